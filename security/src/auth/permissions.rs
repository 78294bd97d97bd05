//! The permissions, and what each role holds. Pure: routes will name the permission they
//! need (the next step of issue 5), API keys are scoped to a subset of their owner's.

pub const PERMISSIONS: [&str; 17] = [
    "workflows.view",
    "workflows.create",
    "workflows.execute",
    "workflows.approve",
    "workflows.delete",
    "agents.view",
    "agents.execute",
    "agents.configure",
    "projects.create",
    "projects.read",
    "projects.update",
    "projects.delete",
    "users.manage",
    "settings.manage",
    "audit.read",
    "costs.view",
    "memory.manage",
];

/// What `role` may do; an unknown role may do nothing.
pub fn of_role(role: &str) -> Vec<&'static str> {
    let viewer = [
        "workflows.view",
        "agents.view",
        "projects.read",
        "costs.view",
    ];
    let developer = [
        "workflows.create",
        "workflows.execute",
        "agents.execute",
        "memory.manage",
    ];
    let reviewer = ["workflows.approve"];
    let project_owner = [
        "workflows.delete",
        "agents.configure",
        "projects.update",
        "projects.delete",
        "audit.read",
    ];
    let org_owner = ["projects.create", "users.manage"];
    let mut granted: Vec<&'static str> = match role {
        "viewer" => viewer.to_vec(),
        "developer" => [&viewer[..], &developer[..]].concat(),
        "reviewer" => [&viewer[..], &developer[..], &reviewer[..]].concat(),
        "project_owner" => [
            &viewer[..],
            &developer[..],
            &reviewer[..],
            &project_owner[..],
        ]
        .concat(),
        "org_owner" => [
            &viewer[..],
            &developer[..],
            &reviewer[..],
            &project_owner[..],
            &org_owner[..],
        ]
        .concat(),
        "super_admin" => PERMISSIONS.to_vec(),
        _ => Vec::new(),
    };
    granted.sort_unstable();
    granted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grow_by_inclusion_and_only_reviewers_and_up_approve() {
        let order = [
            "viewer",
            "developer",
            "reviewer",
            "project_owner",
            "org_owner",
            "super_admin",
        ];
        for pair in order.windows(2) {
            let (lower, higher) = (of_role(pair[0]), of_role(pair[1]));
            assert!(
                lower.iter().all(|p| higher.contains(p)),
                "{} ⊄ {}",
                pair[0],
                pair[1]
            );
            assert!(higher.len() > lower.len());
        }
        assert!(!of_role("developer").contains(&"workflows.approve"));
        assert!(of_role("reviewer").contains(&"workflows.approve"));
        assert!(of_role("emperor").is_empty());
        assert_eq!(of_role("super_admin").len(), PERMISSIONS.len());
        for role in order {
            assert!(of_role(role).iter().all(|p| PERMISSIONS.contains(p)));
        }
    }
}
