//! The pieces of the UI that pages share, one module per concern. Pages take them from here,
//! never from one another.

mod badges;
mod choice_select;
mod code_editor;
mod job_log;
mod job_result;
mod jobs_table;
mod kill_button;
mod live_job;
mod loading;
mod settings;
mod timeline;
mod toasts;

pub use badges::{PriorityBadge, StatusBadge};
pub use choice_select::ChoiceSelect;
pub use code_editor::{json_error, CodeEditor};
pub use job_log::JobLog;
pub use job_result::JobResult;
pub use jobs_table::JobsTable;
pub use kill_button::KillButton;
pub use live_job::follow_job;
pub use loading::{id_param, loaded_page, LoadError, NotFound};
pub use settings::{provide_settings, use_settings, ReadOnlyHidden};
pub use timeline::{JobDuration, Timeline};
pub use toasts::{use_toasts, Toasts};
