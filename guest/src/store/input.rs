//! Input a running task asks of the client: the requests, the
//! answers, and the worker taking them.

use crate::env::Environment;
use crate::error::StoreError;
use crate::json::parse_limited;
use crate::kv::Kv;
use crate::outcome::INPUT_METHODS;
use crate::record::{InputRequest, InputResponse, StoredInputRequest, TaskRecord};
use crate::status::TaskStatus;

use super::runs::check_fence;
use super::{raw_json, refuse_if_terminal, Change, TaskStore};

impl<K: Kv, E: Environment> TaskStore<K, E> {
    /// Adds input requests under keys the task never used and moves it to
    /// `input_required`. A later run of a retryable task asking a key an
    /// earlier run asked is not asked again: the answer it got waits for
    /// the worker once more, and a question still open stays open. A
    /// `worker`'s request is refused once its lease passed on.
    pub fn request_input(
        &self,
        owner: &str,
        task_id: &str,
        worker: Option<&str>,
        requests: &[InputRequest],
    ) -> Result<TaskRecord, StoreError> {
        if requests.is_empty() {
            return Err(StoreError::InvalidParams(
                "request-input needs at least one request".into(),
            ));
        }
        let mut parsed = Vec::with_capacity(requests.len());
        for request in requests {
            self.check_key(&request.key)?;
            if !INPUT_METHODS.contains(&request.method.as_str()) {
                return Err(StoreError::InvalidParams(format!(
                    "input request {:?}: method must be one of {INPUT_METHODS:?}",
                    request.key
                )));
            }
            let params =
                self.parse_object(&request.params, self.config.max_result_bytes, "params")?;
            parsed.push((request.key.clone(), request.method.clone(), params));
        }
        self.mutate(owner, task_id, None, |task, _| {
            refuse_if_terminal(&task.head, "the input requests")?;
            check_fence(&task.head, worker)?;
            let rerun = task.head.runs.attempt > 1;
            let body = &mut task.body;
            let mut asked = false;
            for (key, method, params) in &parsed {
                if rerun && body.used_input_keys.contains(key) {
                    if let Some(answer) = body.taken_answers.get(key) {
                        body.answers.insert(key.clone(), answer.clone());
                        continue;
                    }
                    if body.input_requests.contains_key(key) || body.answers.contains_key(key) {
                        asked |= body.input_requests.contains_key(key);
                        continue;
                    }
                }
                let used = &mut body.used_input_keys;
                if used.contains(key) {
                    return Err(StoreError::InvalidParams(format!(
                        "input key {key:?} was already used on task {task_id}: keys are unique over a task's life"
                    )));
                }
                used.push(key.clone());
                body.input_requests.insert(
                    key.clone(),
                    StoredInputRequest {
                        method: method.clone(),
                        params: params.clone(),
                    },
                );
                task.head.pending_input.push(key.clone());
                asked = true;
            }
            task.head.answers_waiting = u32::try_from(task.body.answers.len()).unwrap_or(u32::MAX);
            if asked {
                task.head.status = TaskStatus::InputRequired;
            }
            Ok(Change::Made)
        })
    }

    /// Records the responses whose keys are outstanding (others are
    /// ignored); the task is `working` again once none is outstanding.
    /// Nothing changes on a terminal task.
    pub fn answer_input(
        &self,
        owner: &str,
        task_id: &str,
        responses: &[InputResponse],
    ) -> Result<TaskRecord, StoreError> {
        let limits = self.json_limits(self.config.max_result_bytes);
        let mut parsed = Vec::with_capacity(responses.len());
        for response in responses {
            self.check_key(&response.key)?;
            parse_limited(&response.response, limits, "input response")?;
            parsed.push((
                response.key.clone(),
                raw_json(response.response.trim().to_owned())?,
            ));
        }
        self.mutate(owner, task_id, None, |task, _| {
            if task.head.status.is_terminal() {
                return Ok(Change::None);
            }
            let mut change = Change::None;
            for (key, response) in &parsed {
                // Unknown and already answered keys are ignored (SEP-2663).
                if task.body.input_requests.remove(key).is_none() {
                    continue;
                }
                task.head.pending_input.retain(|k| k != key);
                task.body.answers.insert(key.clone(), response.clone());
                change = Change::Made;
            }
            task.head.answers_waiting = u32::try_from(task.body.answers.len()).unwrap_or(u32::MAX);
            if change == Change::Made
                && task.head.pending_input.is_empty()
                && task.head.status == TaskStatus::InputRequired
            {
                task.head.status = TaskStatus::Working;
            }
            Ok(change)
        })
    }

    /// Removes and returns the answers waiting for the worker (a
    /// retryable task keeps them for a later run). A `worker`'s take is
    /// refused once its lease passed on.
    pub fn take_answers(
        &self,
        owner: &str,
        task_id: &str,
        worker: Option<&str>,
    ) -> Result<Vec<InputResponse>, StoreError> {
        let taken = std::cell::RefCell::new(Vec::new());
        self.mutate(owner, task_id, None, |task, _| {
            refuse_if_terminal(&task.head, "the answers")?;
            check_fence(&task.head, worker)?;
            let answers = std::mem::take(&mut task.body.answers);
            if task.head.runs.retry.is_some() {
                for (key, answer) in &answers {
                    task.body.taken_answers.insert(key.clone(), answer.clone());
                }
            }
            *taken.borrow_mut() = answers
                .into_iter()
                .map(|(key, response)| InputResponse {
                    key,
                    response: response.get().to_owned(),
                })
                .collect();
            task.head.answers_waiting = 0;
            Ok(if taken.borrow().is_empty() {
                Change::None
            } else {
                Change::Made
            })
        })?;
        Ok(taken.into_inner())
    }
}
