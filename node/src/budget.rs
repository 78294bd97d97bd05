//! A run's budgets as the provider chain meets them: each paid call's worst case is
//! held in the store before the call (`Store::hold_budget`), and let go of when the
//! request's calls are written to the ledger.

use std::sync::{Mutex, PoisonError};

use troupe_agents::Billing;
use troupe_inference::providers::{Holding, SpendGuard};
use troupe_store::{Refusal, Store};

/// The budgets of one request's calls, and what it holds of them so far.
pub(crate) struct BudgetGuard {
    store: Store,
    billing: Billing,
    held_usd: Mutex<f64>,
}

impl BudgetGuard {
    pub(crate) fn new(store: Store, billing: Billing) -> Self {
        Self {
            store,
            billing,
            held_usd: Mutex::new(0.0),
        }
    }

    /// What the request's calls hold, to let go of as they are recorded.
    pub(crate) fn held_usd(&self) -> f64 {
        *self.held_usd.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn try_hold(&self, provider: &str, worst_usd: f64) -> Result<(), String> {
        match self.store.hold_budget(&self.billing, worst_usd).await {
            Ok(None) => {
                *self.held_usd.lock().unwrap_or_else(PoisonError::into_inner) += worst_usd;
                Ok(())
            }
            Ok(Some(refusal)) => Err(refused(&refusal, provider, worst_usd)),
            // Fail closed: a budget that cannot be read is not spent past.
            Err(error) => Err(format!(
                "the call to `{provider}` was not made: the run's budget could not be read ({error})"
            )),
        }
    }
}

impl SpendGuard for BudgetGuard {
    fn hold<'a>(&'a self, provider: &'a str, worst_usd: f64) -> Holding<'a> {
        Box::pin(self.try_hold(provider, worst_usd))
    }

    fn refusal_fails(&self) -> bool {
        !self.billing.local_only
    }
}

/// Why a call was not made, naming the budget and what was spent.
fn refused(refusal: &Refusal, provider: &str, worst_usd: f64) -> String {
    let Refusal {
        scope,
        budget_usd,
        spent_usd,
        held_usd,
    } = refusal;
    let held = if *held_usd > 0.0 {
        format!(" (and ${held_usd:.4} held by calls under way)")
    } else {
        String::new()
    };
    format!(
        "the budget of {scope} is ${budget_usd:.4} and ${spent_usd:.4} of it is spent{held}; \
         a call to `{provider}` could cost up to ${worst_usd:.4}, so it was not made \
         (raise `budget_usd`, or set `on_budget: local_only` to go on with local models)"
    )
}
