//! The arena: the map with two terminal columns per cell (so cells look
//! square), food, every snake in its color with its name, ours highlighted,
//! and a viewport that follows the camera when the map is larger than the
//! space on screen.

use protocol::text::sanitize_line;
use protocol::{Pos, WorldState};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use crate::ui::app::App;

/// Screen columns per map cell.
pub const CELL_W: u16 = 2;

/// The first map coordinate shown on one axis: negative centres a map
/// smaller than the view; otherwise the camera is centred and the window
/// clamped to the map.
pub fn origin(map: u16, view: u16, center: Option<u16>) -> i32 {
    let (map, view) = (i32::from(map), i32::from(view));
    if map <= view {
        return -((view - map) / 2);
    }
    let c = center.map_or(map / 2, i32::from);
    (c - view / 2).clamp(0, map - view)
}

/// Draws the arena of `app` into `area` (the inside of its frame).
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(view) = app.view.as_ref() else {
        return;
    };
    let theme = &app.theme;
    let g = &theme.glyphs;
    let (cols, rows) = (area.width / CELL_W, area.height);
    if cols == 0 || rows == 0 {
        return;
    }
    let map = &view.map;
    let center = app.center();
    let ox = origin(map.width, cols, center.map(|p| p.x));
    let oy = origin(map.height, rows, center.map(|p| p.y));
    // Screen position of a map cell, if it is in the window.
    let place = |p: Pos| -> Option<(u16, u16)> {
        let (cx, cy) = (i32::from(p.x) - ox, i32::from(p.y) - oy);
        if cx < 0 || cy < 0 || cx >= i32::from(cols) || cy >= i32::from(rows) {
            return None;
        }
        Some((area.x + cx as u16 * CELL_W, area.y + cy as u16))
    };

    for cy in 0..rows {
        for cx in 0..cols {
            let (mx, my) = (ox + i32::from(cx), oy + i32::from(cy));
            if mx < 0 || my < 0 || mx >= i32::from(map.width) || my >= i32::from(map.height) {
                continue;
            }
            let p = Pos::new(mx as u16, my as u16);
            let (x, y) = (area.x + cx * CELL_W, area.y + cy);
            if map.is_wall(p) {
                buf.set_string(x, y, g.wall, theme.wall());
            } else {
                buf.set_string(x, y, g.floor, theme.dim());
            }
        }
    }
    let Some(world) = view.world.as_ref() else {
        return;
    };
    for &f in &world.food {
        if let Some((x, y)) = place(f) {
            buf.set_string(x, y, g.food, theme.food());
        }
    }
    let me = view.me;
    // Ours last, so it is on top where snakes overlap on screen.
    let order = world
        .snakes
        .iter()
        .filter(|s| Some(s.id) != me)
        .chain(world.snakes.iter().filter(|s| Some(s.id) == me));
    for s in order.clone() {
        let mine = Some(s.id) == me;
        let (body, head) = if mine {
            (g.my_body, g.my_head)
        } else {
            (g.body, g.head)
        };
        let (body_style, head_style) = if mine {
            (theme.mine(s.id), theme.my_head(s.id))
        } else {
            (theme.snake(s.id), theme.head(s.id))
        };
        for (i, &p) in s.body.iter().enumerate().rev() {
            if let Some((x, y)) = place(p) {
                if i == 0 {
                    buf.set_string(x, y, head, head_style);
                } else {
                    buf.set_string(x, y, body, body_style);
                }
            }
        }
    }
    for s in order {
        draw_label(app, world, s, area, buf, &place);
    }
}

/// The snake's name just above its head (or below, at the top edge).
fn draw_label(
    app: &App,
    _world: &WorldState,
    s: &protocol::SnakeState,
    area: Rect,
    buf: &mut Buffer,
    place: &dyn Fn(Pos) -> Option<(u16, u16)>,
) {
    let Some((x, y)) = s.head().and_then(place) else {
        return;
    };
    let name = sanitize_line(&s.name, 16);
    let y = if y > area.y {
        y - 1
    } else if y + 1 < area.bottom() {
        y + 1
    } else {
        return;
    };
    let width = name.chars().count() as u16;
    // Keep the label inside the arena.
    let x = x.min(area.right().saturating_sub(width)).max(area.x);
    let max = (area.right() - x) as usize;
    let mine = app.view.as_ref().and_then(|v| v.me) == Some(s.id);
    let style = if mine {
        app.theme.my_label(s.id)
    } else {
        app.theme.snake(s.id)
    };
    buf.set_stringn(x, y, &name, max, style);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_maps_are_centred_and_large_ones_follow_the_camera() {
        assert_eq!(origin(10, 20, Some(3)), -5);
        assert_eq!(origin(100, 20, Some(50)), 40);
        assert_eq!(origin(100, 20, Some(2)), 0, "clamped at the left edge");
        assert_eq!(origin(100, 20, Some(99)), 80, "clamped at the right edge");
        assert_eq!(origin(100, 20, None), 40, "no camera: the middle");
        assert_eq!(origin(20, 20, Some(0)), 0);
    }
}
