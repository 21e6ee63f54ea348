//! Short messages confirming (or refusing) an action, shown above every page so they survive
//! the navigation an action may trigger.

use std::time::Duration;

use leptos::prelude::*;

/// How long a toast stays; long enough to read two lines.
const TOAST_FOR: Duration = Duration::from_secs(8);

/// How a toast looks: confirmation or failure.
#[derive(Clone, Copy, PartialEq)]
enum ToastKind {
    Success,
    Failure,
}

#[derive(Clone)]
struct Toast {
    id: u64,
    kind: ToastKind,
    text: String,
    /// The timer that takes the toast away.
    expiry: Option<TimeoutHandle>,
}

/// The toasts on screen. They belong to the app rather than to the page that shows one, so
/// their timers end with the app, or with the toast when it is dismissed first.
#[derive(Clone, Copy)]
pub struct Toasts {
    list: RwSignal<Vec<Toast>>,
    next_id: StoredValue<u64>,
}

impl Toasts {
    pub fn provide() -> Self {
        let toasts = Toasts {
            list: RwSignal::new(Vec::new()),
            next_id: StoredValue::new(0),
        };
        provide_context(toasts);
        on_cleanup(move || {
            toasts.list.with_untracked(|list| {
                list.iter()
                    .filter_map(|toast| toast.expiry)
                    .for_each(|expiry| expiry.clear())
            })
        });
        toasts
    }

    fn show(self, kind: ToastKind, text: impl Into<String>) {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        let expiry = set_timeout_with_handle(move || self.dismiss(id), TOAST_FOR).ok();
        self.list.update(|list| {
            list.push(Toast {
                id,
                kind,
                text: text.into(),
                expiry,
            })
        });
    }

    fn dismiss(self, id: u64) {
        self.list.update(|list| {
            list.retain(|toast| {
                if toast.id != id {
                    return true;
                }
                if let Some(expiry) = toast.expiry {
                    expiry.clear();
                }
                false
            })
        });
    }

    pub fn success(&self, text: impl Into<String>) {
        self.show(ToastKind::Success, text);
    }

    pub fn failure(&self, text: impl Into<String>) {
        self.show(ToastKind::Failure, text);
    }

    pub fn view(self) -> impl IntoView {
        let list = self.list;
        view! {
            <div class="toasts" role="status" aria-live="polite">
                <For each=move || list.get() key=|toast| toast.id let:toast>
                    <div class="toast" class:failure=toast.kind == ToastKind::Failure data-testid="toast">
                        <span>{toast.text}</span>
                        <button
                            type="button"
                            class="icon-button"
                            aria-label="Dismiss"
                            on:click=move |_| self.dismiss(toast.id)
                        >
                            "×"
                        </button>
                    </div>
                </For>
            </div>
        }
    }
}

pub fn use_toasts() -> Toasts {
    expect_context::<Toasts>()
}
