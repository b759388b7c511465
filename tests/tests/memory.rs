//! The contract suite on the in-memory backend, through the component.

pmcp_tasks_tests::contract_suite!(pmcp_tasks_tests::InMemory);
