//! Hive CI (Budabit's pipelines) from the terminal: repositories
//! ([`repo`]), the 5401 run and 5402 result events and a run's state
//! ([`run`]), the 5100 job that executes a run and the plans that start
//! one ([`exec`]) and their network side ([`start`]), listing a
//! repository's runs ([`list`]), following one run with the job verbs
//! ([`follow`]) and a runner's report ([`report`]).
//! Wire format: `loom-protocol.md`, "Hive CI".

pub mod exec;
pub mod follow;
pub mod list;
pub mod repo;
pub mod report;
pub mod run;
pub mod start;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_exec;

pub use exec::{plan_fresh, plan_rerun, Exec, FreshRun, RunPlan};
pub use list::{list_runs, RunView, RunsPage, RunsQuery};
pub use repo::{Announcement, RepoRef, KIND_REPO_ANNOUNCEMENT};
pub use run::{
    run_state, ResultEvent, RunEvent, StateSource, WorkflowResult, WorkflowRun,
    KIND_WORKFLOW_RESULT,
};
