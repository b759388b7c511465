//! The contract and `KvBackend` conformance suites on the in-memory backend.

/// Every rule of the task store, through the component.
mod contract {
    #[allow(unused_imports)]
    use super::*;
    pmcp_tasks_tests::contract_suite!(pmcp_tasks_tests::InMemory);
}

/// Running tasks: outcomes, input, cancellation, leases, across replicas.
mod workers {
    #[allow(unused_imports)]
    use super::*;
    pmcp_tasks_tests::worker_contract_suite!(pmcp_tasks_tests::InMemory);
}

/// The `KvBackend` contract, on the backend alone.
mod kv {
    #[allow(unused_imports)]
    use super::*;
    pmcp_tasks_tests::kv_conformance_suite!(pmcp_tasks_tests::InMemory);
}

/// Random operation sequences agree with a plain model of the rules.
#[test]
fn the_store_agrees_with_the_model() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    pmcp_tasks_tests::model::check_against_model(&pmcp_tasks_tests::InMemory, &runtime, 128, 40);
}
