//! The storage contract suite against the in-memory store, each test on a
//! fresh store. The store needs nothing kept alive, so the guard is `()`.

crm_store_contract::contract_tests!({ (std::sync::Arc::new(crm_memory::MemoryStore::new()), ()) });
