//! The suites' own harness, checked: what the hostile-input suites feed
//! a server is the same every run.

use pmcp_tasks_tests::corpus::corpus;

#[test]
fn the_corpus_is_the_same_every_run_and_never_has_a_newline() {
    let (a, b) = (corpus(300, 7), corpus(300, 7));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.bytes, y.bytes);
    }
    assert!(a.iter().all(|c| !c.bytes.contains(&b'\n')));
    let labels: std::collections::BTreeSet<_> = a.iter().map(|c| c.label).collect();
    assert_eq!(labels.len(), 8, "{labels:?}");
}
