//! Installs the limits on a call's store: the memory cap, and the time
//! budget (epoch deadlines that do not count backend waits or executor
//! yields, or fuel).

use std::sync::atomic::Ordering;
use std::time::Instant;

use wasmtime::{Store, UpdateDeadline};

use super::call_state::CallState;
use super::limits::{fuel_for, TimeBudgetHit, EPOCH_TICK};
use crate::{Interruption, SandboxLimits};

/// Installs both limits on `store`. With epoch interruption, at every tick
/// a guest past its budget traps, otherwise it yields to the executor (time
/// not charged); with fuel, the guest yields every tick's worth of fuel and
/// traps when its call's allowance is spent.
pub(super) fn enforce(store: &mut Store<CallState>, limits: &SandboxLimits, how: Interruption) {
    store.limiter(|state| &mut state.limiter);
    if how == Interruption::Fuel {
        // Only fails when fuel is off, and it is on under `Interruption::Fuel`.
        let _ = store.fuel_async_yield_interval(Some(fuel_for(EPOCH_TICK)));
        // Instantiating and opening the store run guest code too.
        arm(store, limits, how);
        return;
    }
    let budget = limits.time_budget;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |ctx| {
        if ctx.data().guest_time() > budget {
            return Err(wasmtime::Error::new(TimeBudgetHit(budget)));
        }
        let yielded = ctx.data().yield_counter();
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                let start = Instant::now();
                tokio::task::yield_now().await;
                let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                yielded.fetch_add(nanos, Ordering::Relaxed);
            }),
        ))
    });
}

/// Gives a call its time budget: the next epoch deadline, or its fuel.
pub(super) fn arm(store: &mut Store<CallState>, limits: &SandboxLimits, how: Interruption) {
    match how {
        Interruption::Epoch => store.set_epoch_deadline(1),
        // Only fails when fuel is off, and it is on under `Interruption::Fuel`.
        Interruption::Fuel => drop(store.set_fuel(fuel_for(limits.time_budget))),
    }
}
