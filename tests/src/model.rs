//! Model-based property test: random sequences of every store operation
//! for a few owners, with clock moves, run against a backend through the
//! component and against a plain Rust model of the rules
//! (`docs/task-semantics.md`); after every step the two must agree: the same
//! outcome (or the same kind of error), and the same view of each owner.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pmcp_tasks_host::clock::ManualClock;
use pmcp_tasks_host::{StoreConfig, TaskError, TaskHost, TaskStatus};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};

use crate::BackendFactory;

const OWNERS: [&str; 3] = ["alice", "alice:", "bob"];
const CAP: usize = 3;
const DEFAULT_TTL_MS: u64 = 60_000;
const PAGE: u32 = 2;

/// One step of a sequence. Tasks are named by index into every id created
/// so far (any owner's, so steps also try other owners' tasks).
#[derive(Debug, Clone)]
enum Step {
    /// `create` with no ttl (the default) or a short one, in ms.
    Create { owner: usize, ttl_ms: Option<u64> },
    /// `get`.
    Get { owner: usize, task: usize },
    /// `update-status` to a status, with a message.
    Update {
        owner: usize,
        task: usize,
        status: TaskStatus,
        message: Option<String>,
    },
    /// `set-variables` of one key (`null` deletes it).
    SetVariable {
        owner: usize,
        task: usize,
        key: u8,
        value: Option<i64>,
    },
    /// `complete-with-result` as completed or failed.
    Complete {
        owner: usize,
        task: usize,
        failed: bool,
    },
    /// `cancel`.
    Cancel { owner: usize, task: usize },
    /// `delete`.
    Delete { owner: usize, task: usize },
    /// A whole listing walk, page by page.
    List { owner: usize },
    /// `cleanup-expired`.
    Cleanup,
    /// The clock moves forward by this many ms.
    Advance { ms: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    let owner = 0..OWNERS.len();
    let task = 0usize..12;
    let status = prop::sample::select(TaskStatus::ALL.to_vec());
    prop_oneof![
        3 => (owner.clone(), prop::option::of(prop::sample::select(vec![400u64, 1_500]))).prop_map(|(owner, ttl_ms)| Step::Create { owner, ttl_ms }),
        2 => (owner.clone(), task.clone()).prop_map(|(owner, task)| Step::Get { owner, task }),
        3 => (owner.clone(), task.clone(), status, prop::option::of("[a-z]{0,3}")).prop_map(|(owner, task, status, message)| Step::Update { owner, task, status, message }),
        2 => (owner.clone(), task.clone(), 0u8..3, prop::option::of(-5i64..5)).prop_map(|(owner, task, key, value)| Step::SetVariable { owner, task, key, value }),
        2 => (owner.clone(), task.clone(), any::<bool>()).prop_map(|(owner, task, failed)| Step::Complete { owner, task, failed }),
        1 => (owner.clone(), task.clone()).prop_map(|(owner, task)| Step::Cancel { owner, task }),
        1 => (owner.clone(), task.clone()).prop_map(|(owner, task)| Step::Delete { owner, task }),
        2 => owner.prop_map(|owner| Step::List { owner }),
        1 => Just(Step::Cleanup),
        2 => (1u64..1_000).prop_map(|ms| Step::Advance { ms }),
    ]
}

/// What the model keeps of a task.
#[derive(Debug, Clone)]
struct ModelTask {
    owner: usize,
    status: TaskStatus,
    message: Option<String>,
    variables: Map<String, Value>,
    has_result: bool,
    expires_at: Option<u64>,
    created_ms: u64,
}

/// The rules, in plain Rust.
#[derive(Debug, Default)]
struct Model {
    /// Every task ever created, in creation order, by id.
    order: Vec<String>,
    tasks: BTreeMap<String, ModelTask>,
    now_ms: u64,
}

/// The kinds of outcome the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    NotFound,
    InvalidTransition,
    QuotaExceeded,
}

fn outcome<T>(result: &Result<T, TaskError>) -> Result<Outcome, TestCaseError> {
    match result {
        Ok(_) => Ok(Outcome::Ok),
        Err(TaskError::NotFound(_)) => Ok(Outcome::NotFound),
        Err(TaskError::InvalidTransition(_)) => Ok(Outcome::InvalidTransition),
        Err(TaskError::QuotaExceeded(_)) => Ok(Outcome::QuotaExceeded),
        Err(other) => Err(TestCaseError::fail(format!("unexpected error {other:?}"))),
    }
}

impl Model {
    fn live(&self, id: &str, owner: usize) -> Option<&ModelTask> {
        self.tasks
            .get(id)
            .filter(|t| t.owner == owner && t.expires_at.is_none_or(|at| self.now_ms < at))
    }

    /// The owner's live tasks in creation order; tasks created at the same
    /// instant (the test clock stands still) come in id order.
    fn live_ids(&self, owner: usize) -> Vec<String> {
        let mut live: Vec<(u64, &String)> = self
            .order
            .iter()
            .filter_map(|id| self.live(id, owner).map(|t| (t.created_ms, id)))
            .collect();
        live.sort();
        live.into_iter().map(|(_, id)| id.clone()).collect()
    }

    /// The outcome of a mutation of a live, non-terminal task.
    fn mutable(&self, id: &str, owner: usize) -> Outcome {
        match self.live(id, owner) {
            None => Outcome::NotFound,
            Some(t) if t.status.is_terminal() => Outcome::InvalidTransition,
            Some(_) => Outcome::Ok,
        }
    }
}

/// Runs `cases` random sequences of up to `steps` steps on fresh backends
/// from `factory`, panicking with the shrunk failing sequence if the store
/// and the model ever disagree.
pub fn check_against_model(
    factory: &dyn BackendFactory,
    runtime: &tokio::runtime::Runtime,
    cases: u32,
    steps: usize,
) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(step(), 1..steps), |sequence| {
        runtime.block_on(run_sequence(factory, &sequence))
    });
    if let Err(failure) = result {
        panic!("the store and the model disagree: {failure}");
    }
}

async fn run_sequence(
    factory: &dyn BackendFactory,
    sequence: &[Step],
) -> Result<(), TestCaseError> {
    let clock = ManualClock::new(Duration::from_millis(1_800_000_000_000));
    let mut config = StoreConfig::default();
    config.max_tasks_per_owner = Some(CAP as u32);
    config.default_ttl = Some(Duration::from_millis(DEFAULT_TTL_MS));
    let host = TaskHost::builder()
        .backend(factory.fresh().await)
        .clock(Arc::new(clock.clone()))
        .config(config)
        .build()
        .await
        .map_err(|e| TestCaseError::fail(format!("building the host: {e}")))?;
    let mut model = Model {
        now_ms: 1_800_000_000_000,
        ..Model::default()
    };
    for (n, step) in sequence.iter().enumerate() {
        apply(&host, &clock, &mut model, step)
            .await
            .map_err(|e| TestCaseError::fail(format!("step {n} {step:?}: {e}")))?;
        for owner in 0..OWNERS.len() {
            compare_owner(&host, &model, owner).await?;
        }
    }
    Ok(())
}

fn expect(step_outcome: Outcome, predicted: Outcome) -> Result<(), TestCaseError> {
    if step_outcome == predicted {
        Ok(())
    } else {
        Err(TestCaseError::fail(format!(
            "store said {step_outcome:?}, model predicted {predicted:?}"
        )))
    }
}

async fn apply(
    host: &TaskHost,
    clock: &ManualClock,
    model: &mut Model,
    step: &Step,
) -> Result<(), TestCaseError> {
    let id_of = |task: usize| -> String {
        match model.order.len() {
            0 => "0".repeat(46),
            n => model.order[task % n].clone(),
        }
    };
    match step.clone() {
        Step::Create { owner, ttl_ms } => {
            let result = host
                .create(
                    OWNERS[owner],
                    "tools/call",
                    ttl_ms.map(Duration::from_millis),
                )
                .await;
            let full = model.live_ids(owner).len() >= CAP;
            expect(
                outcome(&result)?,
                if full {
                    Outcome::QuotaExceeded
                } else {
                    Outcome::Ok
                },
            )?;
            if let Ok(record) = result {
                let ttl = ttl_ms.unwrap_or(DEFAULT_TTL_MS);
                model.order.push(record.task.task_id.clone());
                model.tasks.insert(
                    record.task.task_id,
                    ModelTask {
                        owner,
                        status: TaskStatus::Working,
                        message: None,
                        variables: Map::new(),
                        has_result: false,
                        expires_at: Some(model.now_ms + ttl),
                        created_ms: model.now_ms,
                    },
                );
            }
        }
        Step::Get { owner, task } => {
            let id = id_of(task);
            let predicted = if model.live(&id, owner).is_some() {
                Outcome::Ok
            } else {
                Outcome::NotFound
            };
            expect(outcome(&host.get(OWNERS[owner], &id).await)?, predicted)?;
        }
        Step::Update {
            owner,
            task,
            status,
            message,
        } => {
            let id = id_of(task);
            // The same live status is a progress report (a new message).
            let predicted = model.mutable(&id, owner);
            let result = host
                .update_status(OWNERS[owner], &id, status, message.as_deref())
                .await;
            expect(outcome(&result)?, predicted)?;
            if predicted == Outcome::Ok {
                let t = model.tasks.get_mut(&id).unwrap();
                t.status = status;
                t.message = message;
            }
        }
        Step::SetVariable {
            owner,
            task,
            key,
            value,
        } => {
            let id = id_of(task);
            let predicted = model.mutable(&id, owner);
            let key = format!("k{key}");
            let patch = Map::from_iter([(key.clone(), value.map_or(Value::Null, |v| json!(v)))]);
            expect(
                outcome(&host.set_variables(OWNERS[owner], &id, &patch).await)?,
                predicted,
            )?;
            if predicted == Outcome::Ok {
                let vars = &mut model.tasks.get_mut(&id).unwrap().variables;
                match value {
                    Some(v) => vars.insert(key, json!(v)),
                    None => vars.remove(&key),
                };
            }
        }
        Step::Complete {
            owner,
            task,
            failed,
        } => {
            let id = id_of(task);
            let predicted = model.mutable(&id, owner);
            let status = if failed {
                TaskStatus::Failed
            } else {
                TaskStatus::Completed
            };
            let result = host
                .complete_with_result(OWNERS[owner], &id, status, &json!({"content": []}))
                .await;
            expect(outcome(&result)?, predicted)?;
            if predicted == Outcome::Ok {
                let t = model.tasks.get_mut(&id).unwrap();
                t.status = status;
                t.has_result = true;
            }
        }
        Step::Cancel { owner, task } => {
            let id = id_of(task);
            let predicted = model.mutable(&id, owner);
            expect(outcome(&host.cancel(OWNERS[owner], &id).await)?, predicted)?;
            if predicted == Outcome::Ok {
                model.tasks.get_mut(&id).unwrap().status = TaskStatus::Cancelled;
            }
        }
        Step::Delete { owner, task } => {
            let id = id_of(task);
            let predicted = if model.live(&id, owner).is_some() {
                Outcome::Ok
            } else {
                Outcome::NotFound
            };
            expect(outcome(&host.delete(OWNERS[owner], &id).await)?, predicted)?;
            if predicted == Outcome::Ok {
                model.tasks.remove(&id);
            }
        }
        Step::List { owner } => compare_owner(host, model, owner).await?,
        Step::Cleanup => {
            host.cleanup_expired(1_000)
                .await
                .map_err(|e| TestCaseError::fail(format!("cleanup: {e}")))?;
        }
        Step::Advance { ms } => {
            clock.advance(Duration::from_millis(ms));
            model.now_ms += ms;
        }
    }
    Ok(())
}

/// The owner's listing (walked page by page) and every listed task's state
/// are the model's.
async fn compare_owner(host: &TaskHost, model: &Model, owner: usize) -> Result<(), TestCaseError> {
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = host
            .list(OWNERS[owner], cursor.as_deref(), Some(PAGE))
            .await
            .map_err(|e| TestCaseError::fail(format!("list: {e}")))?;
        listed.extend(page.tasks);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let ids: Vec<String> = listed.iter().map(|t| t.task_id.clone()).collect();
    prop_assert_eq!(&ids, &model.live_ids(owner), "listing of {}", OWNERS[owner]);
    for task in listed {
        let expected = &model.tasks[&task.task_id];
        prop_assert_eq!(task.status, expected.status);
        prop_assert_eq!(&task.status_message, &expected.message);
        let record = host
            .get(OWNERS[owner], &task.task_id)
            .await
            .map_err(|e| TestCaseError::fail(format!("get: {e}")))?;
        prop_assert_eq!(&record.variables, &expected.variables);
        prop_assert_eq!(record.has_result, expected.has_result);
    }
    Ok(())
}
