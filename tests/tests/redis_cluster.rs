//! The contract suite on a 3-master Redis Cluster of real servers.
#![cfg(feature = "redis")]

pmcp_tasks_tests::contract_suite!(pmcp_tasks_tests::redis::RedisFactory::cluster());
