//! Job tokens (SPEC.md §13.3): `-j N` bounds how many `.do` processes run their own code at
//! once in one build session.
//!
//! A job takes a token before it locks its target and gives it back when its `.do` exits. A
//! `.do` blocked in a nested `redo-ifchange` lends its token out while it waits (see
//! `engine::Job`), so nesting never deadlocks, even at `-j 1`. The top-level request holds no
//! token of its own.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The token pool of one build session.
#[derive(Clone, Debug)]
pub struct Tokens {
    /// `None`: unlimited (`-j 0`).
    sem: Option<Arc<Semaphore>>,
    limit: u32,
}

/// One job slot; released on drop.
#[derive(Debug)]
pub struct Token {
    _permit: Option<OwnedSemaphorePermit>,
}

impl Tokens {
    /// `n` tokens; 0 means unlimited.
    pub fn new(n: u32) -> Tokens {
        let sem = (n > 0).then(|| Arc::new(Semaphore::new(n as usize)));
        Tokens { sem, limit: n }
    }

    /// The job limit, 0 = unlimited.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub async fn acquire(&self) -> Token {
        let permit = match &self.sem {
            // The semaphore is never closed, so acquire cannot fail; if it somehow did, running
            // the job without a token is better than failing the build.
            Some(sem) => sem.clone().acquire_owned().await.ok(),
            None => None,
        };
        Token { _permit: permit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_and_unlimited() {
        let t = Tokens::new(1);
        let a = t.acquire().await;
        let pending = tokio::time::timeout(std::time::Duration::from_millis(20), t.acquire()).await;
        assert!(pending.is_err(), "second token must wait");
        drop(a);
        let _b = t.acquire().await;
        let u = Tokens::new(0);
        let _x = u.acquire().await;
        let _y = u.acquire().await;
        assert_eq!(u.limit(), 0);
    }
}
