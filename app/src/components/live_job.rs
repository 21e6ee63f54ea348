//! A job kept up to date in the page, with its log: the job page's, and the one the form's
//! "Run once" panel started.

use engine::model::{JobLogLine, ScraperJob};
use leptos::prelude::*;

use crate::api::{get_job, job_logs};
use crate::live::{self, Flow, JobUpdate, LOG_CHUNK};

/// Keeps `job` and `lines` up to date from the job's live stream (or by polling), until the
/// job has finished and its whole log is here.
pub fn follow_job(job: RwSignal<ScraperJob>, lines: RwSignal<Vec<JobLogLine>>) {
    let (scraper_id, job_id) = job.with_untracked(|job| (job.scraper.id, job.id));
    let last_line = move || lines.with_untracked(|lines| lines.last().map_or(0, |line| line.id));
    // Overlapping updates (a poll racing a reconnect) must not repeat lines.
    let add_lines = move |new: Vec<JobLogLine>| {
        let after = last_line();
        lines.update(|lines| lines.extend(new.into_iter().filter(|line| line.id > after)));
    };
    live::follow(
        live::job_url(scraper_id, job_id, last_line()),
        move |update: JobUpdate| {
            let last_chunk = update.lines.len() < LOG_CHUNK;
            if !update.job.is_empty() {
                job.update(|job| update.job.apply(job));
            }
            add_lines(update.lines);
            if last_chunk && job.with_untracked(|job| job.status.is_finished()) {
                Flow::Stop
            } else {
                Flow::Continue
            }
        },
        move || {
            leptos::task::spawn_local(async move {
                if let (Ok(polled), Ok(new)) = (
                    get_job(scraper_id, job_id).await,
                    job_logs(scraper_id, job_id, Some(last_line()), LOG_CHUNK).await,
                ) {
                    if job.with_untracked(|known| *known != polled) {
                        job.set(polled);
                    }
                    add_lines(new);
                }
            })
        },
    );
}
