//! The appliance console (`scribe console`): what an operator at the box needs at a glance —
//! health, models, the job queue, recordings and recent errors. It shows ids, states and
//! counts, never transcript or note text, so it is safe on a screen in a back office.
//!
//! This module only draws a [`Snapshot`]; the appliance gathers one every half second.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, List, ListItem, Paragraph, Row, Table};

/// Everything the console shows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// (what, status, healthy)
    pub health: Vec<(String, String, bool)>,
    /// (model, role, verified)
    pub models: Vec<(String, String, bool)>,
    pub queue: Vec<QueueItem>,
    pub microphone: Microphone,
    pub recordings: Vec<Recording>,
    /// Recent warnings and errors from the log (ids and reasons only).
    pub errors: Vec<String>,
    /// What the last key press did.
    pub notice: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    pub id: String,
    pub state: String,
    pub age_s: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Microphone {
    /// No input device (a CI box, a server without a sound card).
    #[default]
    None,
    /// The configured device, and whether it can be opened.
    Device { name: String },
    /// Something is wrong with it, in words an operator can act on.
    Error(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub id: String,
    pub seconds: u64,
    /// Input level in dBFS (0 is full scale).
    pub level_dbfs: f32,
}

/// One frame as plain text, `width` × `height` cells.
pub fn render_text(s: &Snapshot, width: u16, height: u16) -> String {
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).expect("an in-memory terminal");
    terminal.draw(|f| draw(f, s)).expect("drawing into memory");
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width).map(|x| buffer[(x, y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn age(s: i64) -> String {
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

fn ok_style(ok: bool) -> Style {
    Style::default().fg(if ok { Color::Green } else { Color::Red })
}

/// Draws the whole console into `frame`.
pub fn draw(frame: &mut Frame, s: &Snapshot) {
    let [top, middle, bottom, help] = Layout::vertical([
        Constraint::Length((s.health.len().max(s.models.len()) as u16 + 2).max(4)),
        Constraint::Min(6),
        Constraint::Length(8),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let [health, models] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let [queue, recordings] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(middle);

    let rows = s.health.iter().map(|(what, status, ok)| {
        Row::new(vec![
            Span::raw(what.clone()),
            Span::styled(status.clone(), ok_style(*ok)),
        ])
    });
    frame.render_widget(
        Table::new(rows, [Constraint::Length(16), Constraint::Min(10)])
            .block(Block::default().borders(Borders::ALL).title(" Health ")),
        health,
    );

    let rows = s.models.iter().map(|(name, role, ok)| {
        Row::new(vec![
            Span::raw(role.clone()),
            Span::raw(name.clone()),
            Span::styled(if *ok { "verified" } else { "NOT VERIFIED" }, ok_style(*ok)),
        ])
    });
    frame.render_widget(
        Table::new(
            rows,
            [Constraint::Length(6), Constraint::Min(10), Constraint::Length(12)],
        )
        .block(Block::default().borders(Borders::ALL).title(" Models ")),
        models,
    );

    draw_queue(frame, queue, &s.queue);
    draw_recordings(frame, recordings, s);

    let items: Vec<ListItem> = if s.errors.is_empty() {
        vec![ListItem::new(Span::styled(
            "No recent errors.",
            Style::default().fg(Color::Green),
        ))]
    } else {
        s.errors
            .iter()
            .map(|e| ListItem::new(Span::styled(e.clone(), Style::default().fg(Color::Yellow))))
            .collect()
    };
    frame.render_widget(
        List::new(items).block(Block::default().borders(Borders::ALL).title(" Recent errors ")),
        bottom,
    );
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" r ", Style::default().add_modifier(Modifier::REVERSED)),
            Span::raw(" record  "),
            Span::styled(" s ", Style::default().add_modifier(Modifier::REVERSED)),
            Span::raw(" stop  "),
            Span::styled(" q ", Style::default().add_modifier(Modifier::REVERSED)),
            Span::raw(" quit   "),
            match &s.notice {
                Some(n) => Span::styled(n.clone(), Style::default().fg(Color::Cyan)),
                None => Span::raw("Ids and states only; notes are reviewed in the web app."),
            },
        ])),
        help,
    );
}

fn draw_queue(frame: &mut Frame, area: Rect, queue: &[QueueItem]) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" Job queue ({}) ", queue.len()));
    if queue.is_empty() {
        frame.render_widget(
            Paragraph::new("Queue empty: nothing to transcribe or draft.").block(block),
            area,
        );
        return;
    }
    let rows = queue.iter().map(|q| {
        let color = match q.state.as_str() {
            "failed" => Color::Red,
            "recording" => Color::Magenta,
            _ => Color::Cyan,
        };
        Row::new(vec![
            Span::raw(q.id.clone()),
            Span::styled(q.state.replace('_', " "), Style::default().fg(color)),
            Span::raw(age(q.age_s)),
        ])
    });
    frame.render_widget(
        Table::new(
            rows,
            [Constraint::Length(18), Constraint::Length(14), Constraint::Min(6)],
        )
        .header(Row::new(vec!["encounter", "stage", "waiting"]).style(Style::default().add_modifier(Modifier::BOLD)))
        .block(block),
        area,
    );
}

fn draw_recordings(frame: &mut Frame, area: Rect, s: &Snapshot) {
    let block = Block::default().borders(Borders::ALL).title(" Room microphone ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mic = match &s.microphone {
        Microphone::None => Line::styled(
            "no microphone found: recording from this box is off",
            Style::default().fg(Color::Yellow),
        ),
        Microphone::Device { name } => Line::styled(format!("device: {name}"), Style::default().fg(Color::Green)),
        Microphone::Error(e) => Line::styled(format!("microphone error: {e}"), Style::default().fg(Color::Red)),
    };
    let mut constraints = vec![Constraint::Length(3)];
    constraints.extend(s.recordings.iter().map(|_| Constraint::Length(2)));
    constraints.push(Constraint::Min(0));
    let areas = Layout::vertical(constraints).split(inner);
    frame.render_widget(
        Paragraph::new(mic).wrap(ratatui::widgets::Wrap { trim: true }),
        areas[0],
    );
    for (r, area) in s.recordings.iter().zip(areas.iter().skip(1)) {
        // -60 dBFS (silence) .. 0 dBFS (full scale)
        let ratio = ((r.level_dbfs + 60.0) / 60.0).clamp(0.0, 1.0);
        let color = if r.level_dbfs > -3.0 { Color::Red } else { Color::Green };
        frame.render_widget(
            Gauge::default()
                .ratio(f64::from(ratio))
                .gauge_style(Style::default().fg(color))
                .label(format!("{} · {} s · {:.0} dBFS", r.id, r.seconds, r.level_dbfs)),
            *area,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(s: &Snapshot) -> String {
        render_text(s, 110, 30)
    }

    fn healthy() -> Snapshot {
        Snapshot {
            health: vec![
                ("database".into(), "ok (SQLCipher 4.20)".into(), true),
                ("audit trail".into(), "intact, 120 events".into(), true),
            ],
            models: vec![("ggml-tiny.en.bin".into(), "asr".into(), true)],
            ..Snapshot::default()
        }
    }

    #[test]
    fn an_idle_box_without_a_microphone_says_so() {
        let screen = render(&healthy());
        assert!(screen.contains("Queue empty"), "{screen}");
        assert!(screen.contains("no microphone found"), "{screen}");
        assert!(screen.contains("No recent errors."), "{screen}");
        assert!(
            screen.contains("verified") && screen.contains("intact, 120 events"),
            "{screen}"
        );
    }

    #[test]
    fn a_busy_box_lists_its_queue_recordings_and_errors() {
        let mut s = healthy();
        s.queue = vec![
            QueueItem {
                id: "a1b2c3d4e5f60708".into(),
                state: "transcribing".into(),
                age_s: 42,
            },
            QueueItem {
                id: "1111222233334444".into(),
                state: "failed".into(),
                age_s: 4000,
            },
        ];
        s.microphone = Microphone::Device {
            name: "USB Conference Mic".into(),
        };
        s.recordings = vec![Recording {
            id: "5555666677778888".into(),
            seconds: 95,
            level_dbfs: -18.0,
        }];
        s.errors = vec!["encounter 1111222233334444 failed: the drafting worker crashed".into()];
        s.models.push(("qwen.gguf".into(), "llm".into(), false));
        let screen = render(&s);
        assert!(screen.contains("Job queue (2)"), "{screen}");
        assert!(
            screen.contains("a1b2c3d4e5f60708") && screen.contains("transcribing"),
            "{screen}"
        );
        assert!(screen.contains("42 s") && screen.contains("1 h"), "{screen}");
        assert!(screen.contains("USB Conference Mic"), "{screen}");
        assert!(screen.contains("5555666677778888 · 95 s · -18 dBFS"), "{screen}");
        assert!(screen.contains("drafting worker crashed"), "{screen}");
        assert!(screen.contains("NOT VERIFIED"), "{screen}");
    }
}
