//! Starting the launcher too late (inside `#[tokio::main]`, or after any thread) fails with
//! a hint that shows the shape that works.

#[test]
fn starting_the_launcher_in_a_threaded_process_says_how_to_start_it() {
    // A second thread, alive during the call, whatever libtest's own threading.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || rx.recv());
    let err = nsbox::launcher::start().expect_err("started the launcher in a threaded process");
    drop(tx);
    let _ = other.join();
    let e = nsbox::Error::from_io(&err).expect("an nsbox::Error inside");
    assert_eq!(e.step(), nsbox::Step::Threads, "{err}");
    let hint = e.hint().expect("a hint");
    assert!(
        hint.contains("fn main") && hint.contains("#[tokio::main]"),
        "the hint does not show the shape that works: {hint}"
    );
    assert_ne!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    assert!(
        nsbox::launcher::pid().is_none(),
        "a launcher was started anyway"
    );
}
