//! The domain actor: one task runs every mutation (create, delete, apply, rotate, login) to the
//! end before the next starts, so concurrent requests never interleave writes to the server,
//! the secret store, the IDE files or the state.

use std::future::Future;
use std::pin::Pin;
use tokio::sync::{mpsc, oneshot};

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Clone)]
pub struct Actor {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Actor {
    /// Starts the actor's task; it ends when every handle is dropped.
    pub fn spawn() -> Actor {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            while let Some(job) = queue.recv().await {
                job.await;
            }
        });
        Actor { jobs }
    }

    /// Runs `work` after every mutation queued before it, and returns its result.
    pub async fn run<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::pin(async move {
            let _ = reply.send(work.await);
        });
        self.jobs.send(job).ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn jobs_never_overlap() {
        let actor = Actor::spawn();
        let running = Arc::new(AtomicUsize::new(0));
        let overlaps = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let (actor, running, overlaps) = (actor.clone(), running.clone(), overlaps.clone());
                tokio::spawn(async move {
                    actor
                        .run(async move {
                            if running.fetch_add(1, Ordering::SeqCst) > 0 {
                                overlaps.fetch_add(1, Ordering::SeqCst);
                            }
                            tokio::task::yield_now().await;
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                })
            })
            .collect();
        for handle in handles {
            handle.await.unwrap().unwrap();
        }
        assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    }
}
