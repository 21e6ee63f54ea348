//! A job's log, on the job page and in the form's "Run once" panel.

use engine::model::JobLogLine;
use leptos::prelude::*;

use crate::time::time_of_day_millis;

/// Height of one log line in pixels; `.log-line` in style/main.css has the same.
const LINE_HEIGHT: f64 = 20.0;
/// Lines rendered above and below the visible ones, so fast scrolling shows no gap.
const OVERSCAN: usize = 30;
/// Lines visible at once at most (the log box is at most this many lines tall).
const VISIBLE: usize = 30;

/// A job log of any length: only the lines in view are in the page (a 100,000-line log is
/// as fast as a short one), coloured by level, following the end while "Follow" is on.
#[component]
pub fn JobLog(lines: RwSignal<Vec<JobLogLine>>) -> impl IntoView {
    let scroll_top = RwSignal::new(0.0);
    let follow = RwSignal::new(true);
    let container = NodeRef::<leptos::html::Div>::new();
    let count = Memo::new(move |_| lines.with(Vec::len));
    let window = move || {
        let first = (scroll_top.get() / LINE_HEIGHT) as usize;
        let start = first.saturating_sub(OVERSCAN);
        lines.with(|lines| {
            let end = (first + VISIBLE + OVERSCAN).min(lines.len());
            lines.get(start.min(end)..end).unwrap_or_default().to_vec()
        })
    };
    let offset = move || {
        let first = (scroll_top.get() / LINE_HEIGHT) as usize;
        format!(
            "translateY({}px)",
            first.saturating_sub(OVERSCAN).min(count.get()) as f64 * LINE_HEIGHT
        )
    };
    // New lines while following: jump to the end.
    Effect::new(move |_| {
        count.track();
        if follow.get() {
            if let Some(element) = container.get() {
                element.set_scroll_top(element.scroll_height());
            }
        }
    });
    let on_scroll = move |_| {
        if let Some(element) = container.get() {
            let top = element.scroll_top();
            scroll_top.set(f64::from(top));
            // Scrolling up to read stops following; scrolling back to the end resumes it.
            let at_end =
                top + element.client_height() >= element.scroll_height() - LINE_HEIGHT as i32;
            if follow.get_untracked() != at_end {
                follow.set(at_end);
            }
        }
    };
    view! {
        <div class="log-toolbar">
            <span class="muted" data-testid="log-count">{move || format!("{} lines", count.get())}</span>
            <label class="toggle">
                <input type="checkbox" data-testid="log-follow" prop:checked=move || follow.get() on:change=move |event| follow.set(event_target_checked(&event))/>
                " Follow the end"
            </label>
        </div>
        <div class="log" node_ref=container tabindex="0" role="log" aria-label="Job log (times in UTC)" on:scroll=on_scroll data-testid="job-log">
            <Show when=move || count.get() == 0>
                <p class="muted log-empty">"No log lines yet."</p>
            </Show>
            <div class="log-content" style:height=move || format!("{}px", count.get() as f64 * LINE_HEIGHT)>
                <div style:transform=offset>
                    <For each=window key=|line| line.id let:line>
                        <div class=format!("log-line level-{}", line.level.as_str().to_lowercase()) data-testid="log-line">
                            <span class="log-at">{time_of_day_millis(&line.at)}</span>
                            <span class="log-level">{line.level.as_str()}</span>
                            <span class="log-message" title=line.message.clone()>{line.message.clone()}</span>
                        </div>
                    </For>
                </div>
            </div>
        </div>
    }
}
