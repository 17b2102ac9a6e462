//! What each organization role may do: the one place permissions are decided.
//!
//! | action | owner | admin | member | viewer |
//! |---|---|---|---|---|
//! | see the org and its members | ✓ | ✓ | ✓ | ✓ |
//! | use the org's resources | ✓ | ✓ | ✓ | read only |
//! | create API keys (up to own role) | ✓ | ✓ | ✓ | ✓ (viewer keys) |
//! | see and revoke every API key of the org | ✓ | ✓ | | |
//! | invite members, revoke invitations | ✓ | ✓ | | |
//! | change roles, remove members | ✓ | ✓ (not owners, not to owner) | | |
//! | rename the org | ✓ | ✓ | | |
//! | set up single sign-on and domains | ✓ | | | |
//! | transfer ownership | ✓ | | | |
//! | leave the org | ✓ (if another owner remains) | ✓ | ✓ | ✓ |
//!
//! Invariant kept by the store: an organization always has at least one owner.

use super::accounts::Role;

/// Something a member may try to do in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See the org, its members and roles.
    View,
    /// Use the org's resources (write).
    Use,
    /// Create an API key acting in the org.
    CreateApiKey,
    /// See and revoke every API key of the org.
    ManageApiKeys,
    /// Invite people and revoke invitations.
    Invite,
    /// Change members' roles and remove members.
    ManageMembers,
    /// Rename the org.
    Rename,
    /// Set up the org's single sign-on, its email domains, and require SSO (owners only).
    ConfigureSso,
    /// Make someone else the owner.
    TransferOwnership,
    /// Leave the org.
    Leave,
}

/// Every action, for exhaustive tests and documentation.
pub const ACTIONS: [Action; 10] = [
    Action::View,
    Action::Use,
    Action::CreateApiKey,
    Action::ManageApiKeys,
    Action::Invite,
    Action::ManageMembers,
    Action::Rename,
    Action::ConfigureSso,
    Action::TransferOwnership,
    Action::Leave,
];

/// Whether `role` may do `action` at all.
pub fn allowed(role: Role, action: Action) -> bool {
    use Action as A;
    match action {
        A::View | A::CreateApiKey | A::Leave => true,
        A::Use => role <= Role::Member,
        A::ManageApiKeys | A::Invite | A::ManageMembers | A::Rename => role <= Role::Admin,
        // The org's provider vouches for every address of its domains: whoever sets it up
        // can sign in as those people, owners included. Owners only.
        A::TransferOwnership | A::ConfigureSso => role == Role::Owner,
    }
}

/// Whether `actor` may give `target_current` the role `new_role` (or remove them, with
/// `new_role = None`). Admins manage members and viewers and other admins, never owners, and
/// cannot make anyone an owner; owners may do anything (the last-owner rule is the store's).
pub fn may_manage(actor: Role, target_current: Role, new_role: Option<Role>) -> bool {
    if !allowed(actor, Action::ManageMembers) {
        return false;
    }
    match actor {
        Role::Owner => true,
        _ => target_current != Role::Owner && new_role.is_none_or(|r| r != Role::Owner),
    }
}

/// Whether `actor` may create an API key with `key_role` (never above the actor's own).
pub fn may_create_api_key(actor: Role, key_role: Role) -> bool {
    allowed(actor, Action::CreateApiKey) && key_role >= actor
}

/// Whether `actor` may invite someone with `role` (never above the actor's own).
pub fn may_invite(actor: Role, role: Role) -> bool {
    allowed(actor, Action::Invite) && role >= actor
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role as R;

    /// The whole matrix, one row per role, in ACTIONS order.
    #[test]
    fn every_role_action_pair() {
        let expected: [(R, [bool; 10]); 4] = [
            (
                R::Owner,
                [true, true, true, true, true, true, true, true, true, true],
            ),
            (
                R::Admin,
                [true, true, true, true, true, true, true, false, false, true],
            ),
            (
                R::Member,
                [
                    true, true, true, false, false, false, false, false, false, true,
                ],
            ),
            (
                R::Viewer,
                [
                    true, false, true, false, false, false, false, false, false, true,
                ],
            ),
        ];
        for (role, row) in expected {
            for (action, want) in ACTIONS.iter().zip(row) {
                assert_eq!(allowed(role, *action), want, "{role:?} {action:?}");
            }
        }
    }

    #[test]
    fn managing_members() {
        assert!(may_manage(R::Owner, R::Owner, Some(R::Admin)));
        assert!(may_manage(R::Owner, R::Member, Some(R::Owner)));
        assert!(may_manage(R::Admin, R::Member, Some(R::Admin)));
        assert!(may_manage(R::Admin, R::Admin, None));
        assert!(!may_manage(R::Admin, R::Owner, Some(R::Member)));
        assert!(!may_manage(R::Admin, R::Owner, None));
        assert!(!may_manage(R::Admin, R::Member, Some(R::Owner)));
        assert!(!may_manage(R::Member, R::Viewer, Some(R::Member)));
        assert!(!may_manage(R::Viewer, R::Viewer, None));
    }

    #[test]
    fn api_keys() {
        assert!(may_create_api_key(R::Member, R::Member));
        assert!(may_create_api_key(R::Member, R::Viewer));
        assert!(!may_create_api_key(R::Member, R::Admin));
        assert!(may_create_api_key(R::Viewer, R::Viewer));
        assert!(!may_create_api_key(R::Viewer, R::Member));
    }

    #[test]
    fn inviting() {
        assert!(may_invite(R::Owner, R::Owner));
        assert!(may_invite(R::Admin, R::Admin));
        assert!(may_invite(R::Admin, R::Viewer));
        assert!(!may_invite(R::Admin, R::Owner));
        assert!(!may_invite(R::Member, R::Viewer));
    }
}
