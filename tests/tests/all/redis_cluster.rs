//! The contract suite on a 3-master Redis Cluster of real servers.
#![cfg(feature = "redis")]

/// Every rule of the task store, through the component.
mod contract {
    #[allow(unused_imports)]
    use super::*;
    pmcp_tasks_tests::contract_suite!(pmcp_tasks_tests::redis::RedisFactory::cluster());
}

/// Running tasks: outcomes, input, cancellation, leases, across replicas.
mod workers {
    #[allow(unused_imports)]
    use super::*;
    pmcp_tasks_tests::worker_contract_suite!(pmcp_tasks_tests::redis::RedisFactory::cluster());
}

/// The `KvBackend` contract, on the backend alone.
mod kv {
    #[allow(unused_imports)]
    use super::*;
    pmcp_tasks_tests::kv_conformance_suite!(pmcp_tasks_tests::redis::RedisFactory::cluster());
}
