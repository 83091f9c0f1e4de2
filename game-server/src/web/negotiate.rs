//! Which `GET /` a request gets: the lobby page or the text usage page.

/// True when an `Accept` header prefers `text/html` to `text/plain`: HTML
/// is named with a weight above zero and at least that of plain text
/// (named, or matched by `text/*` or `*/*`). Browsers send `text/html`
/// first; curl sends `*/*`, which names neither, so curl keeps its text.
pub fn prefers_html(accept: &str) -> bool {
    let mut html: Option<f32> = None;
    // The most specific range that matches text/plain decides its weight.
    let mut plain: (u8, f32) = (0, 0.0);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/html" => html = Some(q),
            "text/plain" => plain = (3, q),
            "text/*" if plain.0 < 2 => plain = (2, q),
            "*/*" if plain.0 < 1 => plain = (1, q),
            _ => {}
        }
    }
    html.is_some_and(|h| h > 0.0 && h >= plain.1)
}

#[cfg(test)]
mod tests {
    use super::prefers_html;

    #[test]
    fn browsers_get_html_and_curl_keeps_its_text() {
        // Chromium's and Firefox's navigation Accept headers.
        assert!(prefers_html(
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
        ));
        assert!(prefers_html("text/html"));
        // curl, wget, scripts.
        assert!(!prefers_html("*/*"));
        assert!(!prefers_html(""));
        assert!(!prefers_html("application/json"));
        // Asking for text first, or refusing HTML, keeps the text page.
        assert!(!prefers_html("text/plain, text/html;q=0.5"));
        assert!(!prefers_html("text/html;q=0"));
        assert!(prefers_html("text/plain;q=0.5, text/html"));
        assert!(prefers_html("TEXT/HTML ; q=0.9, */*;q=0.1"));
    }
}
