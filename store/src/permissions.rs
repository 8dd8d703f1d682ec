//! Which role may do what: the one table the review app's routes and the store's own checks both
//! consult, and that the compliance report prints. Per-visit access (whose visit it is) is a
//! second fence on top, in `review.rs`.

use crate::{Actor, Role, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    RecordVisits,
    UploadRecordings,
    OpenInbox,
    OpenVisits,
    PlayRecordings,
    EditDrafts,
    SignNotes,
    AmendNotes,
    ExportNotes,
    UseBreakGlass,
    Administer,
    ManageUsers,
    ReadAuditTrail,
}

impl Permission {
    pub const ALL: [Permission; 13] = [
        Permission::RecordVisits,
        Permission::UploadRecordings,
        Permission::OpenInbox,
        Permission::OpenVisits,
        Permission::PlayRecordings,
        Permission::EditDrafts,
        Permission::SignNotes,
        Permission::AmendNotes,
        Permission::ExportNotes,
        Permission::UseBreakGlass,
        Permission::Administer,
        Permission::ManageUsers,
        Permission::ReadAuditTrail,
    ];

    /// The people's roles holding it.
    pub fn roles(self) -> &'static [Role] {
        use Permission::*;
        match self {
            RecordVisits | UploadRecordings | OpenInbox | OpenVisits | PlayRecordings | EditDrafts => {
                &[Role::Clinician, Role::Physician]
            }
            SignNotes | AmendNotes | ExportNotes | UseBreakGlass => &[Role::Physician],
            Administer | ManageUsers => &[Role::ItAdmin],
            ReadAuditTrail => &[Role::ItAdmin, Role::Auditor],
        }
    }

    /// Whether this permission opens a visit's content, and so also needs the per-visit rule.
    pub fn touches_phi(self) -> bool {
        use Permission::*;
        matches!(
            self,
            RecordVisits
                | UploadRecordings
                | OpenInbox
                | OpenVisits
                | PlayRecordings
                | EditDrafts
                | SignNotes
                | AmendNotes
                | ExportNotes
                | UseBreakGlass
        )
    }

    /// What it lets someone do, for error messages and the report.
    pub fn describe(self) -> &'static str {
        use Permission::*;
        match self {
            RecordVisits => "record visits",
            UploadRecordings => "upload recordings",
            OpenInbox => "open an inbox",
            OpenVisits => "open visits",
            PlayRecordings => "play recordings",
            EditDrafts => "edit drafts",
            SignNotes => "sign notes",
            AmendNotes => "amend notes",
            ExportNotes => "export notes",
            UseBreakGlass => "use break-glass access",
            Administer => "administer the appliance",
            ManageUsers => "manage users",
            ReadAuditTrail => "read the audit trail",
        }
    }

    /// Whether a person in `role` holds it. (`Role::System` holds none of these: the pipeline and
    /// the box's command line go through store methods that do not ask.)
    pub fn allows(self, role: Role) -> bool {
        self.roles().contains(&role)
    }

    /// `Ok` if `actor` holds it, else the store's refusal.
    pub fn check(self, actor: &Actor) -> Result<(), StoreError> {
        if self.allows(actor.role) {
            Ok(())
        } else {
            Err(StoreError::Forbidden {
                actor: actor.name.clone(),
                role: actor.role.as_str().into(),
                action: self.describe().into(),
            })
        }
    }
}
