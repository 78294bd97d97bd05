//! A reference to a supervised actor that stays valid across its restarts: its
//! supervisor puts each new incarnation in, and holders read the current one, instead of
//! looking the actor up by name on every call.

use std::sync::{Arc, RwLock};

use ractor::{ACTIVE_STATES, ActorRef, Message};

pub struct ChildRef<M> {
    current: Arc<RwLock<Option<ActorRef<M>>>>,
}

impl<M> Clone for ChildRef<M> {
    fn clone(&self) -> Self {
        Self {
            current: self.current.clone(),
        }
    }
}

impl<M: Message> Default for ChildRef<M> {
    fn default() -> Self {
        Self {
            current: Arc::new(RwLock::new(None)),
        }
    }
}

impl<M: Message> ChildRef<M> {
    /// The running incarnation, or `None` while it is (re)starting or after it stopped.
    pub fn get(&self) -> Option<ActorRef<M>> {
        let current = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()?;
        ACTIVE_STATES
            .contains(&current.get_status())
            .then_some(current)
    }

    /// Called by the supervisor with each new incarnation.
    pub fn set(&self, actor: ActorRef<M>) {
        // A poisoned lock only means a writer panicked between two assignments of a
        // whole value: the value is still one incarnation or the other.
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(actor);
    }
}
