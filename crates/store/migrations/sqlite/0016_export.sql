-- Export (core::sharing::export) pages an institution's persons by id: the
-- contact persons of its pupils by (institution, contact id), as roles
-- already are by their unique (institution, person, role) index.
CREATE INDEX contacts_institution_contact ON contacts (institution_id, contact_id) WHERE ended_on IS NULL;
