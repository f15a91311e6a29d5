//! Captures what the code under test logs on the current thread.
//!
//! One global subscriber serves the whole test binary and hands each event to the thread that
//! emitted it, when that thread is capturing. Scoped subscribers (`with_default`) are not used:
//! they race with the call sites other test threads register at the same moment, and such a call
//! site can cache "nobody listens" and drop an event the test waits for. The global subscriber's
//! filter decides per event, so no call site is ever cached as silent.

use std::cell::RefCell;
use std::io::Write;
use std::sync::Once;
use tracing::Level;
use tracing_subscriber::filter;
use tracing_subscriber::layer::SubscriberExt as _;

thread_local! {
    /// The level this thread captures at and what it has captured, while a [`Capture`] lives.
    static CAPTURE: RefCell<Option<(Level, Vec<u8>)>> = const { RefCell::new(None) };
}

/// Collects this thread's log lines at `level` and above until [`Capture::finish`].
///
/// An async test that uses it must run the code under test on its own thread (the default
/// current-thread runtime of `#[tokio::test]`).
pub struct Capture(());

pub fn capture(level: Level) -> Capture {
    install();
    CAPTURE.set(Some((level, Vec::new())));
    Capture(())
}

/// Runs `f` and returns what it logged at `level` and above on this thread.
pub fn captured(level: Level, f: impl FnOnce()) -> String {
    let capture = capture(level);
    f();
    capture.finish()
}

impl Capture {
    pub fn finish(self) -> String {
        let bytes = CAPTURE.take().map(|(_, bytes)| bytes).unwrap_or_default();
        String::from_utf8(bytes).expect("log lines are UTF-8")
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        CAPTURE.set(None);
    }
}

fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Asked at every event, never cached per call site: the answer depends on the thread.
        // (`filter_fn` would cache its first answer for each call site, for every thread.)
        let capturing = filter::dynamic_filter_fn(|meta, _| {
            CAPTURE.with_borrow(|c| c.as_ref().is_some_and(|(level, _)| meta.level() <= level))
        });
        let lines = tracing_subscriber::fmt::layer()
            .with_writer(|| ThreadBuffer)
            .with_ansi(false);
        let subscriber = tracing_subscriber::registry().with(capturing).with(lines);
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary");
        // A call site another thread registered while the subscriber was being installed may
        // still hold the answer from before it; ask every call site again.
        tracing::callsite::rebuild_interest_cache();
    });
}

/// Appends to the capturing thread's buffer; drops the line on a thread that is not capturing.
struct ThreadBuffer;

impl Write for ThreadBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with_borrow_mut(|c| {
            if let Some((_, bytes)) = c {
                bytes.extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
