//! The thread pool of push mode: a fixed number of worker threads taking
//! jobs from one bounded queue.
//!
//! The event loop only ever `try_send`s into the queue; when it is full the
//! bridge answers 503 itself. A handler that panics is caught: its
//! exchange gets a 500 (or is closed, if its head went out) and the thread
//! goes on with the next job. Should a worker die anyway, a replacement is
//! started in its place, so the pool keeps its size.
//!
//! The workers stop when the queue's sender is dropped — when the event
//! loop ends and drops its handler factory.

use std::io;
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{Receiver, Sender};

use super::{Request, Response};
use crate::rt::guard::guard;

/// A request and its response, for a worker.
pub(crate) struct Job {
    pub request: Request,
    pub response: Response,
}

/// The handler every worker runs.
type Shared = Arc<dyn Fn(&mut Request, &mut Response) + Send + Sync>;

/// Starts `threads` workers running `handler`, fed by a queue holding at
/// most `queue` jobs that no worker has taken yet.
pub(crate) fn start(threads: usize, queue: usize, handler: Shared) -> io::Result<Sender<Job>> {
    let (jobs, rx) = crossbeam_channel::bounded(queue);
    for id in 0..threads {
        spawn(id, rx.clone(), Arc::clone(&handler))?;
    }
    Ok(jobs)
}

fn spawn(id: usize, jobs: Receiver<Job>, handler: Shared) -> io::Result<()> {
    thread::Builder::new()
        .name(format!("hypersync-{id}"))
        .spawn(move || {
            let sentinel = Sentinel { id, jobs, handler };
            while let Ok(job) = sentinel.jobs.recv() {
                run(job, &*sentinel.handler);
            }
        })?;
    Ok(())
}

/// Runs one job; a panic in the handler becomes a 500 (or a close).
fn run(job: Job, handler: &(dyn Fn(&mut Request, &mut Response) + Send + Sync)) {
    let Job {
        mut request,
        mut response,
    } = job;
    if guard(|| handler(&mut request, &mut response)).is_err() {
        response.fail("handler panicked");
    }
    // Finishes the response (if the handler did not) and lets go of the
    // body; the core drains or closes what was not read.
    drop(response);
    drop(request);
}

/// Starts a replacement if its worker thread dies by a panic that got past
/// `run`.
struct Sentinel {
    id: usize,
    jobs: Receiver<Job>,
    handler: Shared,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        if thread::panicking() {
            let _ = spawn(self.id, self.jobs.clone(), Arc::clone(&self.handler));
        }
    }
}
