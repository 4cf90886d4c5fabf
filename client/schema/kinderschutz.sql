-- kinderschutz.sql: the shipped domain schema of kzsync (domain.md §2, §3, §4).
--
-- Run once by the replica engine on a fresh replica, after it has created its
-- own kz_* tables (among them kz_track_decl, filled at the end of this file).
-- Plain SQL, no extension.  The sample files in ../shared/sample-data load
-- into it unchanged.
--
-- Conventions (domain.md §2.1):
--   * UUID TEXT primary keys; natural keys for institution_type, code_list,
--     sync_policy and report_setting.
--   * Domain columns only.  Versions, clocks and tombstones live in the sync
--     engine's own tables; a deleted row is really deleted (domain.md §2.3),
--     so the views need no "deleted_at IS NULL" filter.
--   * "req" columns are NOT NULL, with two deliberate exceptions (see below):
--     institution.name and case_review_finding.statement, which the state
--     office's replica holds as NULL when they are personal (masked).
--   * Every enumeration of §2.6 is a named CHECK "<table>_<column>_enum";
--     booleans are CHECK (x IN (0,1)), named "<table>_<column>_bool".
--   * Every foreign key is DEFERRABLE INITIALLY DEFERRED, so the sync layer
--     can apply a batch in any order inside one transaction.
--   * Privacy by default (DP-11): listing_consent 0, share_scope 'site',
--     released_to_state 0, anonymisation_checked 0, contains_personal_data 1
--     (a document is treated as personal until someone says otherwise).
--
-- Layout: 1. reference tables (class R), 2. site tables (S) and private
-- tables (P), 3. local table (L), 4. indicator views (domain.md §3),
-- 5. tracking declarations (kz_track_decl).

-- ===========================================================================
-- 1. Reference data (class R: written by the state office, read by all)
-- ===========================================================================

CREATE TABLE site (
    id                     TEXT PRIMARY KEY NOT NULL,
    code                   TEXT NOT NULL UNIQUE,
    name                   TEXT NOT NULL,
    site_kind              TEXT NOT NULL
        CONSTRAINT site_site_kind_enum
        CHECK (site_kind IN ('coordination_centre', 'state_level')),
    carrier_name           TEXT,
    controller_name        TEXT,
    data_protection_regime TEXT NOT NULL
        CONSTRAINT site_data_protection_regime_enum
        CHECK (data_protection_regime IN
               ('sgb_social_data', 'ndsg', 'dsg_ekd', 'kdg')),
    seat_municipality_id   TEXT
        REFERENCES municipality (id) DEFERRABLE INITIALLY DEFERRED,
    active                 INTEGER NOT NULL DEFAULT 1
        CONSTRAINT site_active_bool CHECK (active IN (0, 1))
);

CREATE TABLE municipality (
    id                   TEXT PRIMARY KEY NOT NULL,
    ags                  TEXT NOT NULL UNIQUE
        CONSTRAINT municipality_ags_format
        CHECK (ags GLOB '[0-9][0-9][0-9][0-9][0-9]'
               OR ags GLOB '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]'),
    name                 TEXT NOT NULL,
    municipality_kind    TEXT NOT NULL
        CONSTRAINT municipality_municipality_kind_enum
        CHECK (municipality_kind IN ('independent_city', 'district', 'region',
                                     'district_town', 'municipality')),
    has_youth_office     INTEGER
        CONSTRAINT municipality_has_youth_office_bool
        CHECK (has_youth_office IN (0, 1)),
    parent_id            TEXT
        REFERENCES municipality (id) DEFERRABLE INITIALLY DEFERRED,
    coordinating_site_id TEXT
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE institution_type (
    code             TEXT PRIMARY KEY NOT NULL,
    label_de         TEXT NOT NULL,
    label_en         TEXT NOT NULL,
    sector_code      TEXT NOT NULL
        CONSTRAINT institution_type_sector_code_enum
        CHECK (sector_code IN ('youth_welfare', 'health', 'education',
                               'justice_police', 'social_employment',
                               'counselling_protection', 'coordination')),
    nzfh_sector      TEXT NOT NULL
        CONSTRAINT institution_type_nzfh_sector_enum
        CHECK (nzfh_sector IN ('kjh', 'health', 'other')),
    kkg_3_2_category TEXT
        CONSTRAINT institution_type_kkg_3_2_category_enum
        CHECK (kkg_3_2_category IN
               ('kkg01', 'kkg02', 'kkg03', 'kkg04', 'kkg05', 'kkg06',
                'kkg07', 'kkg08', 'kkg09', 'kkg10', 'kkg11', 'kkg12',
                'kkg13', 'kkg14', 'kkg15', 'kkg16', 'kkg17', 'kkg18')),
    secrecy_4kkg     INTEGER NOT NULL DEFAULT 0
        CONSTRAINT institution_type_secrecy_4kkg_bool
        CHECK (secrecy_4kkg IN (0, 1)),
    sort_order       INTEGER NOT NULL
);

CREATE TABLE code_list (
    list_name  TEXT NOT NULL,
    code       TEXT NOT NULL,
    label_de   TEXT NOT NULL,
    label_en   TEXT NOT NULL,
    sort_order INTEGER NOT NULL,
    PRIMARY KEY (list_name, code)
);

CREATE TABLE recommendation (
    id         TEXT PRIMARY KEY NOT NULL,
    source     TEXT NOT NULL
        CONSTRAINT recommendation_source_enum
        CHECK (source IN ('luegde_commission_2020', 'nds_enquete_2022',
                          'nzfh_quality_criteria',
                          'nds_funding_guideline_2022', 'internal', 'other')),
    ref_code   TEXT,
    title_de   TEXT NOT NULL,
    theme      TEXT NOT NULL,
    source_url TEXT,
    verified   INTEGER NOT NULL DEFAULT 0
        CONSTRAINT recommendation_verified_bool CHECK (verified IN (0, 1))
);

CREATE TABLE retention_rule (
    id               TEXT PRIMARY KEY NOT NULL,
    table_name       TEXT NOT NULL,
    rule_code        TEXT NOT NULL UNIQUE,
    description_de   TEXT NOT NULL,
    trigger_column   TEXT NOT NULL,
    retention_period TEXT NOT NULL
        CONSTRAINT retention_rule_retention_period_format
        CHECK (retention_period GLOB 'P[0-9]*'),
    action           TEXT NOT NULL
        CONSTRAINT retention_rule_action_enum
        CHECK (action IN ('delete', 'anonymise', 'review', 'hide')),
    legal_basis      TEXT,
    status_note      TEXT
);

-- Read by the sync engine as documentation of domain.md §2.2; the binding
-- machine-readable form is kz_track_decl (section 5).
CREATE TABLE sync_policy (
    table_name           TEXT PRIMARY KEY NOT NULL,
    owner_scope          TEXT NOT NULL
        CONSTRAINT sync_policy_owner_scope_enum
        CHECK (owner_scope IN ('state', 'site')),
    replicate_to         TEXT NOT NULL
        CONSTRAINT sync_policy_replicate_to_enum
        CHECK (replicate_to IN ('all_sites', 'owner_site', 'local_only')),
    state_view           TEXT NOT NULL
        CONSTRAINT sync_policy_state_view_enum
        CHECK (state_view IN ('full', 'projection', 'aggregate', 'none')),
    personal_columns     TEXT,
    state_hidden_columns TEXT,
    row_filter_state     TEXT,
    notes                TEXT
);

-- ===========================================================================
-- 2. Site-owned (class S) and site-private (class P) tables
-- ===========================================================================

-- P: staff accounts.
CREATE TABLE app_user (
    id             TEXT PRIMARY KEY NOT NULL,
    site_id        TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    username       TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    email          TEXT,
    user_role      TEXT NOT NULL
        CONSTRAINT app_user_user_role_enum
        CHECK (user_role IN ('coordinator', 'specialist', 'head', 'admin',
                             'state_reader')),
    active         INTEGER NOT NULL DEFAULT 1
        CONSTRAINT app_user_active_bool CHECK (active IN (0, 1)),
    deactivated_on TEXT
);

-- S: partner institutions.  name is "req", but for a sole practitioner
-- (is_natural_person = 1) the whole address block is personal data and
-- travels only in private:NAME (DP-17), so the state office's replica holds
-- NULL there.  A plain NOT NULL would make that replica refuse the row (and
-- IND-01/IND-14 would then differ between site and state); the requirement
-- is therefore the CHECK institution_name_req.
CREATE TABLE institution (
    id                    TEXT PRIMARY KEY NOT NULL,
    site_id               TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    name                  TEXT,
    short_name            TEXT,
    institution_type_code TEXT NOT NULL
        REFERENCES institution_type (code) DEFERRABLE INITIALLY DEFERRED,
    sponsor_name          TEXT,
    sponsor_kind          TEXT NOT NULL
        CONSTRAINT institution_sponsor_kind_enum
        CHECK (sponsor_kind IN ('public', 'nonprofit', 'church', 'private',
                                'freelance')),
    municipality_id       TEXT
        REFERENCES municipality (id) DEFERRABLE INITIALLY DEFERRED,
    street                TEXT,
    postal_code           TEXT,
    city                  TEXT,
    phone                 TEXT,
    email                 TEXT,
    website               TEXT,
    is_natural_person     INTEGER NOT NULL DEFAULT 0
        CONSTRAINT institution_is_natural_person_bool
        CHECK (is_natural_person IN (0, 1)),
    share_scope           TEXT NOT NULL DEFAULT 'site'
        CONSTRAINT institution_share_scope_enum
        CHECK (share_scope IN ('site', 'state_wide')),
    status                TEXT NOT NULL DEFAULT 'active'
        CONSTRAINT institution_status_enum
        CHECK (status IN ('active', 'inactive')),
    verified_on           TEXT,
    notes                 TEXT,
    CONSTRAINT institution_name_req
        CHECK (name IS NOT NULL OR is_natural_person = 1),
    -- DP-07: a natural person's entry is never shared with other centres.
    CONSTRAINT institution_dp07_natural_person_not_shared
        CHECK (is_natural_person = 0 OR share_scope = 'site')
);

-- P: contact persons (whole table personal).
CREATE TABLE contact (
    id                 TEXT PRIMARY KEY NOT NULL,
    site_id            TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    institution_id     TEXT NOT NULL
        REFERENCES institution (id) DEFERRABLE INITIALLY DEFERRED,
    first_name         TEXT NOT NULL,
    last_name          TEXT NOT NULL,
    job_title          TEXT,
    is_iefk            INTEGER NOT NULL DEFAULT 0
        CONSTRAINT contact_is_iefk_bool CHECK (is_iefk IN (0, 1)),
    phone              TEXT,
    email              TEXT,
    listing_consent    INTEGER NOT NULL DEFAULT 0
        CONSTRAINT contact_listing_consent_bool
        CHECK (listing_consent IN (0, 1)),
    listing_consent_on TEXT,
    status             TEXT NOT NULL DEFAULT 'active'
        CONSTRAINT contact_status_enum CHECK (status IN ('active', 'inactive')),
    left_on            TEXT,
    verified_on        TEXT
);

CREATE TABLE network (
    id                          TEXT PRIMARY KEY NOT NULL,
    site_id                     TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    name                        TEXT NOT NULL,
    network_kind                TEXT NOT NULL
        CONSTRAINT network_network_kind_enum
        CHECK (network_kind IN ('early_help', 'child_protection',
                                'round_table', 'neighbourhood_alliance',
                                'working_group', 'steering_group')),
    municipality_id             TEXT
        REFERENCES municipality (id) DEFERRABLE INITIALLY DEFERRED,
    legal_basis                 TEXT,
    established_on              TEXT,
    coordinating_institution_id TEXT
        REFERENCES institution (id) DEFERRABLE INITIALLY DEFERRED,
    coordinator_user_id         TEXT
        REFERENCES app_user (id) DEFERRABLE INITIALLY DEFERRED,
    coordination_fte            REAL
        CONSTRAINT network_coordination_fte_range
        CHECK (coordination_fte >= 0),
    meeting_target_per_year     INTEGER NOT NULL
        CONSTRAINT network_meeting_target_per_year_range
        CHECK (meeting_target_per_year >= 0),
    status                      TEXT NOT NULL DEFAULT 'active'
        CONSTRAINT network_status_enum
        CHECK (status IN ('active', 'dormant', 'dissolved')),
    description                 TEXT
);

CREATE TABLE network_membership (
    id                  TEXT PRIMARY KEY NOT NULL,
    site_id             TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    network_id          TEXT NOT NULL
        REFERENCES network (id) DEFERRABLE INITIALLY DEFERRED,
    institution_id      TEXT NOT NULL
        REFERENCES institution (id) DEFERRABLE INITIALLY DEFERRED,
    membership_role     TEXT NOT NULL DEFAULT 'member'
        CONSTRAINT network_membership_membership_role_enum
        CHECK (membership_role IN ('member', 'steering_group', 'coordination',
                                   'guest')),
    joined_on           TEXT NOT NULL,
    left_on             TEXT,
    delegate_contact_id TEXT
        REFERENCES contact (id) DEFERRABLE INITIALLY DEFERRED,
    UNIQUE (network_id, institution_id, joined_on)
);

CREATE TABLE document (
    id                     TEXT PRIMARY KEY NOT NULL,
    site_id                TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    network_id             TEXT
        REFERENCES network (id) DEFERRABLE INITIALLY DEFERRED,
    doc_kind               TEXT NOT NULL
        CONSTRAINT document_doc_kind_enum
        CHECK (doc_kind IN ('working_aid', 'binding_procedure',
                            'cooperation_agreement', 'minutes', 'concept',
                            'training_material', 'report', 'checklist')),
    title                  TEXT NOT NULL,
    version_label          TEXT,
    published_on           TEXT,
    next_review_due        TEXT,
    audience               TEXT,
    file_ref               TEXT,
    contains_personal_data INTEGER NOT NULL DEFAULT 1
        CONSTRAINT document_contains_personal_data_bool
        CHECK (contains_personal_data IN (0, 1)),
    share_scope            TEXT NOT NULL DEFAULT 'site'
        CONSTRAINT document_share_scope_enum
        CHECK (share_scope IN ('site', 'state_wide')),
    status                 TEXT NOT NULL DEFAULT 'draft'
        CONSTRAINT document_status_enum
        CHECK (status IN ('draft', 'valid', 'superseded')),
    -- DP-07/DP-11: a document with personal data never leaves the site.
    CONSTRAINT document_dp07_personal_not_shared
        CHECK (contains_personal_data = 0 OR share_scope = 'site')
);

CREATE TABLE agreement (
    id                     TEXT PRIMARY KEY NOT NULL,
    site_id                TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    network_id             TEXT
        REFERENCES network (id) DEFERRABLE INITIALLY DEFERRED,
    title                  TEXT NOT NULL,
    agreement_kind         TEXT NOT NULL
        CONSTRAINT agreement_agreement_kind_enum
        CHECK (agreement_kind IN ('cooperation_agreement', 'agreement_8a_4',
                                  'agreement_72a', 'binding_procedure',
                                  'framework_agreement')),
    legal_basis            TEXT,
    scope_summary          TEXT,
    status                 TEXT NOT NULL DEFAULT 'draft'
        CONSTRAINT agreement_status_enum
        CHECK (status IN ('draft', 'in_negotiation', 'in_force',
                          'under_review', 'expired', 'terminated')),
    signed_on              TEXT,
    valid_from             TEXT,
    valid_until            TEXT,
    review_interval_months INTEGER
        CONSTRAINT agreement_review_interval_months_range
        CHECK (review_interval_months > 0),
    last_reviewed_on       TEXT,
    next_review_due        TEXT,
    document_id            TEXT
        REFERENCES document (id) DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE agreement_party (
    id             TEXT PRIMARY KEY NOT NULL,
    site_id        TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    agreement_id   TEXT NOT NULL
        REFERENCES agreement (id) DEFERRABLE INITIALLY DEFERRED,
    institution_id TEXT NOT NULL
        REFERENCES institution (id) DEFERRABLE INITIALLY DEFERRED,
    party_role     TEXT NOT NULL
        CONSTRAINT agreement_party_party_role_enum
        CHECK (party_role IN ('lead', 'signatory', 'participant')),
    signed_on      TEXT,
    UNIQUE (agreement_id, institution_id)
);

CREATE TABLE network_event (
    id                       TEXT PRIMARY KEY NOT NULL,
    site_id                  TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    network_id               TEXT
        REFERENCES network (id) DEFERRABLE INITIALLY DEFERRED,
    event_type               TEXT NOT NULL
        CONSTRAINT network_event_event_type_enum
        CHECK (event_type IN ('round_table', 'working_group',
                              'network_conference', 'neighbourhood_alliance',
                              'steering_group', 'conference_day',
                              'quality_circle')),
    title                    TEXT NOT NULL,
    topic                    TEXT,
    event_date               TEXT NOT NULL,
    municipality_id          TEXT
        REFERENCES municipality (id) DEFERRABLE INITIALLY DEFERRED,
    event_format             TEXT NOT NULL
        CONSTRAINT network_event_event_format_enum
        CHECK (event_format IN ('in_person', 'online', 'hybrid')),
    organiser_institution_id TEXT
        REFERENCES institution (id) DEFERRABLE INITIALLY DEFERRED,
    participants_total       INTEGER NOT NULL
        CONSTRAINT network_event_participants_total_range
        CHECK (participants_total >= 0),
    minutes_document_id      TEXT
        REFERENCES document (id) DEFERRABLE INITIALLY DEFERRED,
    notes                    TEXT
);

CREATE TABLE event_attendance (
    id                    TEXT PRIMARY KEY NOT NULL,
    site_id               TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    event_id              TEXT NOT NULL
        REFERENCES network_event (id) DEFERRABLE INITIALLY DEFERRED,
    institution_type_code TEXT NOT NULL
        REFERENCES institution_type (code) DEFERRABLE INITIALLY DEFERRED,
    institution_id        TEXT
        REFERENCES institution (id) DEFERRABLE INITIALLY DEFERRED,
    participant_count     INTEGER NOT NULL
        CONSTRAINT event_attendance_participant_count_range
        CHECK (participant_count >= 0)
);

CREATE TABLE training (
    id                       TEXT PRIMARY KEY NOT NULL,
    site_id                  TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    title                    TEXT NOT NULL,
    training_kind            TEXT NOT NULL
        CONSTRAINT training_training_kind_enum
        CHECK (training_kind IN ('awareness_child_protection',
                                 'iefk_qualification',
                                 'interdisciplinary_training',
                                 'inhouse_training', 'conference_day',
                                 'network_coordination_training')),
    target_group             TEXT,
    is_interdisciplinary     INTEGER NOT NULL DEFAULT 0
        CONSTRAINT training_is_interdisciplinary_bool
        CHECK (is_interdisciplinary IN (0, 1)),
    start_date               TEXT NOT NULL,
    end_date                 TEXT,
    teaching_units           REAL
        CONSTRAINT training_teaching_units_range CHECK (teaching_units >= 0),
    municipality_id          TEXT
        REFERENCES municipality (id) DEFERRABLE INITIALLY DEFERRED,
    event_format             TEXT NOT NULL
        CONSTRAINT training_event_format_enum
        CHECK (event_format IN ('in_person', 'online', 'hybrid')),
    organiser_institution_id TEXT
        REFERENCES institution (id) DEFERRABLE INITIALLY DEFERRED,
    capacity                 INTEGER
        CONSTRAINT training_capacity_range CHECK (capacity >= 0),
    participants_total       INTEGER NOT NULL
        CONSTRAINT training_participants_total_range
        CHECK (participants_total >= 0),
    evaluation_mean          REAL
        CONSTRAINT training_evaluation_mean_range
        CHECK (evaluation_mean BETWEEN 1 AND 5),
    funding_source           TEXT
        CONSTRAINT training_funding_source_enum
        CHECK (funding_source IN ('state', 'federal_foundation',
                                  'municipality', 'own_funds',
                                  'participant_fees'))
);

CREATE TABLE training_attendance (
    id                    TEXT PRIMARY KEY NOT NULL,
    site_id               TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    training_id           TEXT NOT NULL
        REFERENCES training (id) DEFERRABLE INITIALLY DEFERRED,
    institution_type_code TEXT NOT NULL
        REFERENCES institution_type (code) DEFERRABLE INITIALLY DEFERRED,
    participant_count     INTEGER NOT NULL
        CONSTRAINT training_attendance_participant_count_range
        CHECK (participant_count >= 0)
);

-- P: named participants, for certificates only.
CREATE TABLE training_participant (
    id                    TEXT PRIMARY KEY NOT NULL,
    site_id               TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    training_id           TEXT NOT NULL
        REFERENCES training (id) DEFERRABLE INITIALLY DEFERRED,
    contact_id            TEXT
        REFERENCES contact (id) DEFERRABLE INITIALLY DEFERRED,
    first_name            TEXT NOT NULL,
    last_name             TEXT NOT NULL,
    institution_id        TEXT
        REFERENCES institution (id) DEFERRABLE INITIALLY DEFERRED,
    attended              INTEGER NOT NULL DEFAULT 0
        CONSTRAINT training_participant_attended_bool
        CHECK (attended IN (0, 1)),
    certificate_issued_on TEXT
);

CREATE TABLE consultation (
    id                               TEXT PRIMARY KEY NOT NULL,
    site_id                          TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    consultation_kind                TEXT NOT NULL
        CONSTRAINT consultation_consultation_kind_enum
        CHECK (consultation_kind IN ('municipal_advice', 'advice_day',
                                     'institutional_advice',
                                     'anonymous_case_consultation')),
    consultation_date                TEXT NOT NULL,
    requesting_municipality_id       TEXT
        REFERENCES municipality (id) DEFERRABLE INITIALLY DEFERRED,
    requesting_institution_type_code TEXT
        REFERENCES institution_type (code) DEFERRABLE INITIALLY DEFERRED,
    requesting_institution_id        TEXT
        REFERENCES institution (id) DEFERRABLE INITIALLY DEFERRED,
    topic                            TEXT NOT NULL
        CONSTRAINT consultation_topic_enum
        CHECK (topic IN ('network_building', 'cooperation_agreement',
                         'procedure_8a', 'safeguarding_concept',
                         'data_sharing', 'case_review_method',
                         'training_planning', 'risk_assessment_anonymous')),
    event_format                     TEXT NOT NULL
        CONSTRAINT consultation_event_format_enum
        CHECK (event_format IN ('in_person', 'online', 'hybrid')),
    duration_minutes                 INTEGER
        CONSTRAINT consultation_duration_minutes_range
        CHECK (duration_minutes >= 0),
    participants_count               INTEGER
        CONSTRAINT consultation_participants_count_range
        CHECK (participants_count >= 0),
    follow_up_due                    TEXT,
    outcome_note                     TEXT,
    -- DP-01: an anonymous case consultation names no requesting institution.
    CONSTRAINT dp01_anonymous_consultation_no_institution
        CHECK (consultation_kind <> 'anonymous_case_consultation'
               OR requesting_institution_id IS NULL)
);

CREATE TABLE case_review (
    id                           TEXT PRIMARY KEY NOT NULL,
    site_id                      TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    review_code                  TEXT NOT NULL UNIQUE,
    review_year                  INTEGER NOT NULL
        CONSTRAINT case_review_review_year_range
        CHECK (review_year BETWEEN 2000 AND 2100),
    method                       TEXT NOT NULL
        CONSTRAINT case_review_method_enum
        CHECK (method IN ('systems_nzfh', 'scie_learning_together',
                          'structured_reflection', 'other')),
    trigger_kind                 TEXT NOT NULL
        CONSTRAINT case_review_trigger_kind_enum
        CHECK (trigger_kind IN ('critical_course', 'serious_harm',
                                'routine_case', 'good_practice')),
    child_age_band               TEXT NOT NULL
        CONSTRAINT case_review_child_age_band_enum
        CHECK (child_age_band IN ('under_1', '1_to_3', '3_to_6', '6_to_10',
                                  '10_to_14', '14_to_18', 'multiple',
                                  'unknown')),
    risk_type                    TEXT NOT NULL
        CONSTRAINT case_review_risk_type_enum
        CHECK (risk_type IN ('neglect', 'physical_abuse', 'emotional_abuse',
                             'sexual_violence', 'domestic_violence_witnessed',
                             'multiple', 'not_specified')),
    status                       TEXT NOT NULL DEFAULT 'planned'
        CONSTRAINT case_review_status_enum
        CHECK (status IN ('planned', 'in_progress', 'completed')),
    -- DP-01: month only, never an exact date.
    completed_month              TEXT
        CONSTRAINT dp01_case_review_completed_month_coarse
        CHECK (completed_month GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]'),
    participating_agencies_count INTEGER
        CONSTRAINT case_review_participating_agencies_count_range
        CHECK (participating_agencies_count >= 0),
    anonymisation_checked        INTEGER NOT NULL DEFAULT 0
        CONSTRAINT case_review_anonymisation_checked_bool
        CHECK (anonymisation_checked IN (0, 1)),
    anonymisation_checked_by     TEXT
        REFERENCES app_user (id) DEFERRABLE INITIALLY DEFERRED,
    anonymisation_checked_on     TEXT,
    released_to_state            INTEGER NOT NULL DEFAULT 0
        CONSTRAINT case_review_released_to_state_bool
        CHECK (released_to_state IN (0, 1)),
    summary_anonymised           TEXT,
    -- DP-02: the four-eyes anonymisation check comes before the release.
    CONSTRAINT dp02_release_requires_anonymisation_check
        CHECK (released_to_state = 0 OR anonymisation_checked = 1)
);

CREATE TABLE case_review_sector (
    id                    TEXT PRIMARY KEY NOT NULL,
    site_id               TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    case_review_id        TEXT NOT NULL
        REFERENCES case_review (id) DEFERRABLE INITIALLY DEFERRED,
    institution_type_code TEXT NOT NULL
        REFERENCES institution_type (code) DEFERRABLE INITIALLY DEFERRED,
    UNIQUE (case_review_id, institution_type_code)
);

-- statement is "req", but an unreleased finding's statement travels only in
-- private:NAME, so the state office holds NULL there: the requirement is the
-- CHECK case_review_finding_statement_req (same reasoning as institution).
--
-- DP-02 for findings ("a finding may only be released if its review is")
-- spans two rows, which a CHECK cannot express.  A trigger could, but it
-- would make apply order-dependent (the sync layer applies a batch in any
-- order, DESIGN.md §3) and refuse valid batches.  It is enforced where it
-- matters instead: kz_track_decl sends a finding's row to site:NAME only if
-- its review is released (row_filter) and its statement only if the finding
-- itself is released, so a released finding of an unreleased review never
-- leaves the site.  v_check_dp02_findings lists such rows for the UI.
CREATE TABLE case_review_finding (
    id                TEXT PRIMARY KEY NOT NULL,
    site_id           TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    case_review_id    TEXT NOT NULL
        REFERENCES case_review (id) DEFERRABLE INITIALLY DEFERRED,
    finding_no        INTEGER NOT NULL
        CONSTRAINT case_review_finding_finding_no_range
        CHECK (finding_no >= 1),
    category          TEXT NOT NULL
        CONSTRAINT case_review_finding_category_enum
        CHECK (category IN ('interagency_crisis', 'interagency_longterm',
                            'professional_judgement',
                            'family_professional_interaction',
                            'tools_procedures', 'management_conditions')),
    polarity          TEXT NOT NULL
        CONSTRAINT case_review_finding_polarity_enum
        CHECK (polarity IN ('supportive', 'hindering')),
    interface         TEXT,
    statement         TEXT,
    released_to_state INTEGER NOT NULL DEFAULT 0
        CONSTRAINT case_review_finding_released_to_state_bool
        CHECK (released_to_state IN (0, 1)),
    CONSTRAINT case_review_finding_statement_req
        CHECK (statement IS NOT NULL OR released_to_state = 0),
    UNIQUE (case_review_id, finding_no)
);

CREATE TABLE measure (
    id                         TEXT PRIMARY KEY NOT NULL,
    site_id                    TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    case_review_id             TEXT
        REFERENCES case_review (id) DEFERRABLE INITIALLY DEFERRED,
    finding_id                 TEXT
        REFERENCES case_review_finding (id) DEFERRABLE INITIALLY DEFERRED,
    title                      TEXT NOT NULL,
    description                TEXT,
    responsible_institution_id TEXT
        REFERENCES institution (id) DEFERRABLE INITIALLY DEFERRED,
    status                     TEXT NOT NULL DEFAULT 'planned'
        CONSTRAINT measure_status_enum
        CHECK (status IN ('planned', 'in_progress', 'implemented',
                          'dropped')),
    due_on                     TEXT,
    completed_on               TEXT,
    effect_check_on            TEXT,
    effect_result              TEXT,
    linked_agreement_id        TEXT
        REFERENCES agreement (id) DEFERRABLE INITIALLY DEFERRED,
    linked_document_id         TEXT
        REFERENCES document (id) DEFERRABLE INITIALLY DEFERRED,
    linked_training_id         TEXT
        REFERENCES training (id) DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE measure_recommendation (
    id                TEXT PRIMARY KEY NOT NULL,
    site_id           TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    measure_id        TEXT NOT NULL
        REFERENCES measure (id) DEFERRABLE INITIALLY DEFERRED,
    recommendation_id TEXT NOT NULL
        REFERENCES recommendation (id) DEFERRABLE INITIALLY DEFERRED,
    UNIQUE (measure_id, recommendation_id)
);

CREATE TABLE funding_grant (
    id                  TEXT PRIMARY KEY NOT NULL,
    site_id             TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    network_id          TEXT
        REFERENCES network (id) DEFERRABLE INITIALLY DEFERRED,
    funder              TEXT NOT NULL
        CONSTRAINT funding_grant_funder_enum
        CHECK (funder IN ('federal_foundation', 'state_lower_saxony',
                          'municipality', 'other')),
    programme           TEXT,
    grant_year          INTEGER NOT NULL
        CONSTRAINT funding_grant_grant_year_range
        CHECK (grant_year BETWEEN 2000 AND 2100),
    purpose             TEXT NOT NULL
        CONSTRAINT funding_grant_purpose_enum
        CHECK (purpose IN ('network_coordination', 'outreach_coordination',
                           'qualification', 'documentation_evaluation',
                           'public_relations', 'network_meetings', 'other')),
    amount_granted_cent INTEGER NOT NULL
        CONSTRAINT funding_grant_amount_granted_cent_range
        CHECK (amount_granted_cent >= 0),
    amount_spent_cent   INTEGER
        CONSTRAINT funding_grant_amount_spent_cent_range
        CHECK (amount_spent_cent >= 0),
    report_due_on       TEXT,
    report_submitted_on TEXT
);

-- P: audit log, append-only, no field values.
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY NOT NULL,
    site_id     TEXT NOT NULL
        REFERENCES site (id) DEFERRABLE INITIALLY DEFERRED,
    occurred_at TEXT NOT NULL,
    user_id     TEXT
        REFERENCES app_user (id) DEFERRABLE INITIALLY DEFERRED,
    device_id   TEXT,
    action      TEXT NOT NULL
        CONSTRAINT audit_log_action_enum
        CHECK (action IN ('login', 'create', 'update', 'delete', 'export',
                          'sync_push', 'sync_pull', 'view_personal',
                          'release_to_state')),
    table_name  TEXT,
    row_id      TEXT,
    details     TEXT
);

-- Append-only (domain.md §2.3): an audit row is never changed.  Deletion
-- stays possible for the retention rule RET-AUDIT, and an UPDATE that
-- rewrites the same values (an idempotent re-apply by the sync engine)
-- passes.
CREATE TRIGGER audit_log_append_only
BEFORE UPDATE ON audit_log
WHEN OLD.id IS NOT NEW.id OR OLD.site_id IS NOT NEW.site_id
  OR OLD.occurred_at IS NOT NEW.occurred_at OR OLD.user_id IS NOT NEW.user_id
  OR OLD.device_id IS NOT NEW.device_id OR OLD.action IS NOT NEW.action
  OR OLD.table_name IS NOT NEW.table_name OR OLD.row_id IS NOT NEW.row_id
  OR OLD.details IS NOT NEW.details
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- ===========================================================================
-- 3. Local only (class L, not tracked)
-- ===========================================================================

CREATE TABLE report_setting (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- ===========================================================================
-- 4. Indicator views (domain.md §3)
--
-- Rules every v_ind* view keeps, so that it gives the same rows on a site's
-- full replica and on the state office's projection:
--   * it reads no private column (kz_track_decl private_cols and
--     cond_private_cols) and no class P table, neither to show, count,
--     filter nor join;
--   * rows that stay private (unreleased reviews and what hangs on them,
--     documents with personal data) are excluded by the same predicate as
--     the row_filter of kz_track_decl;
--   * names of persons never appear: institutions are counted, not named.
-- Every view carries site_code.  The DP-03 views (10c, 10d) exist only at
-- state total × year; their site_code is the literal 'ALL'.
-- Facts dated after the reference date (events, trainings, consultations)
-- are not counted: the report describes the state "as of" v_as_of.
-- ===========================================================================

-- The reference date: report_setting 'as_of_date', default today (UTC).
CREATE VIEW v_as_of AS
SELECT COALESCE((SELECT value FROM report_setting WHERE key = 'as_of_date'),
                date('now')) AS as_of;

-- Active membership: joined_on <= as_of, left_on NULL or after as_of, both
-- network and institution active.
CREATE VIEW v_active_membership AS
SELECT s.code AS site_code,
       m.site_id,
       m.id AS membership_id,
       m.network_id,
       m.institution_id,
       m.membership_role,
       m.joined_on,
       m.left_on
FROM network_membership m
JOIN network n ON n.id = m.network_id
JOIN institution i ON i.id = m.institution_id
JOIN site s ON s.id = m.site_id
CROSS JOIN v_as_of a
WHERE m.joined_on <= a.as_of
  AND (m.left_on IS NULL OR m.left_on > a.as_of)
  AND n.status = 'active'
  AND i.status = 'active';

-- IND-01: active partners by site, municipality (of the institution), NZFH
-- sector and fine sector.  An institution has one municipality and one type,
-- so summing partners over a site's rows gives its distinct partners.
CREATE VIEW v_ind01_partners_by_sector AS
SELECT am.site_code,
       mu.ags AS municipality_ags,
       mu.name AS municipality_name,
       t.nzfh_sector,
       t.sector_code,
       COUNT(DISTINCT am.institution_id) AS partners
FROM v_active_membership am
JOIN institution i ON i.id = am.institution_id
JOIN institution_type t ON t.code = i.institution_type_code
LEFT JOIN municipality mu ON mu.id = i.municipality_id
GROUP BY am.site_code, mu.ags, mu.name, t.nzfh_sector, t.sector_code;

-- IND-02: coverage of the 18 § 3 Abs. 2 KKG categories per active network.
CREATE VIEW v_ind02_kkg_coverage AS
SELECT s.code AS site_code,
       n.id AS network_id,
       n.name AS network_name,
       COUNT(DISTINCT t.kkg_3_2_category) AS categories_covered,
       (SELECT COUNT(*) FROM code_list
        WHERE list_name = 'kkg_3_2_category') AS categories_total,
       ROUND(100.0 * COUNT(DISTINCT t.kkg_3_2_category)
             / NULLIF((SELECT COUNT(*) FROM code_list
                       WHERE list_name = 'kkg_3_2_category'), 0), 1)
           AS coverage_pct
FROM network n
JOIN site s ON s.id = n.site_id
LEFT JOIN v_active_membership am ON am.network_id = n.id
LEFT JOIN institution i ON i.id = am.institution_id
LEFT JOIN institution_type t ON t.code = i.institution_type_code
WHERE n.status = 'active'
GROUP BY s.code, n.id, n.name;

-- IND-02b: per active network, the KKG categories without an active partner.
CREATE VIEW v_ind02b_kkg_gaps AS
SELECT s.code AS site_code,
       n.id AS network_id,
       n.name AS network_name,
       c.code AS kkg_category,
       c.label_de AS kkg_category_label_de,
       c.sort_order
FROM network n
JOIN site s ON s.id = n.site_id
CROSS JOIN code_list c
WHERE n.status = 'active'
  AND c.list_name = 'kkg_3_2_category'
  AND NOT EXISTS (
      SELECT 1
      FROM v_active_membership am
      JOIN institution i ON i.id = am.institution_id
      JOIN institution_type t ON t.code = i.institution_type_code
      WHERE am.network_id = n.id AND t.kkg_3_2_category = c.code);

-- IND-03: share of health-sector (NZFH) partners per active network.
CREATE VIEW v_ind03_health_share AS
SELECT s.code AS site_code,
       n.id AS network_id,
       n.name AS network_name,
       COUNT(DISTINCT am.institution_id) AS partners,
       COUNT(DISTINCT CASE WHEN t.nzfh_sector = 'health'
                           THEN am.institution_id END) AS health_partners,
       ROUND(100.0 * COUNT(DISTINCT CASE WHEN t.nzfh_sector = 'health'
                                         THEN am.institution_id END)
             / NULLIF(COUNT(DISTINCT am.institution_id), 0), 1)
           AS health_share_pct
FROM network n
JOIN site s ON s.id = n.site_id
LEFT JOIN v_active_membership am ON am.network_id = n.id
LEFT JOIN institution i ON i.id = am.institution_id
LEFT JOIN institution_type t ON t.code = i.institution_type_code
WHERE n.status = 'active'
GROUP BY s.code, n.id, n.name;

-- Helper: agreements in force at as_of (status in_force or under_review and
-- as_of within valid_from..valid_until; a missing bound is open).
CREATE VIEW v_agreement_in_force AS
SELECT g.*, s.code AS site_code
FROM agreement g
JOIN site s ON s.id = g.site_id
CROSS JOIN v_as_of a
WHERE g.status IN ('in_force', 'under_review')
  AND (g.valid_from IS NULL OR g.valid_from <= a.as_of)
  AND (g.valid_until IS NULL OR g.valid_until >= a.as_of);

-- IND-04: per coordination centre, agreements in force, active partners and
-- the active partners that are party to at least one of them.
CREATE VIEW v_ind04_agreement_coverage AS
SELECT s.code AS site_code,
       (SELECT COUNT(*) FROM v_agreement_in_force f
        WHERE f.site_id = s.id) AS agreements_in_force,
       (SELECT COUNT(DISTINCT am.institution_id) FROM v_active_membership am
        WHERE am.site_id = s.id) AS active_partners,
       (SELECT COUNT(DISTINCT am.institution_id) FROM v_active_membership am
        WHERE am.site_id = s.id
          AND am.institution_id IN (
              SELECT p.institution_id FROM agreement_party p
              JOIN v_agreement_in_force f ON f.id = p.agreement_id))
           AS bound_partners,
       ROUND(100.0 *
             (SELECT COUNT(DISTINCT am.institution_id)
              FROM v_active_membership am
              WHERE am.site_id = s.id
                AND am.institution_id IN (
                    SELECT p.institution_id FROM agreement_party p
                    JOIN v_agreement_in_force f ON f.id = p.agreement_id))
             / NULLIF((SELECT COUNT(DISTINCT am.institution_id)
                       FROM v_active_membership am
                       WHERE am.site_id = s.id), 0), 1) AS bound_share_pct
FROM site s
WHERE s.site_kind = 'coordination_centre';

-- IND-05: review state of every agreement in force.  review_state is
-- 'overdue' (next_review_due < as_of), 'due_90d' (<= as_of + 90 days), 'ok',
-- or 'no_date' when no review date is set.
CREATE VIEW v_ind05_agreement_reviews AS
SELECT f.site_code,
       f.id AS agreement_id,
       f.title,
       f.agreement_kind,
       f.status,
       f.next_review_due,
       CASE
           WHEN f.next_review_due IS NULL THEN 'no_date'
           WHEN f.next_review_due < a.as_of THEN 'overdue'
           WHEN f.next_review_due <= date(a.as_of, '+90 days') THEN 'due_90d'
           ELSE 'ok'
       END AS review_state,
       CASE WHEN f.next_review_due < a.as_of
            THEN CAST(julianday(a.as_of) - julianday(f.next_review_due)
                      AS INTEGER)
       END AS days_overdue,
       CASE WHEN f.next_review_due >= a.as_of
            THEN CAST(julianday(f.next_review_due) - julianday(a.as_of)
                      AS INTEGER)
       END AS days_until_due
FROM v_agreement_in_force f
CROSS JOIN v_as_of a;

-- Helper: network events up to as_of, with their year.
CREATE VIEW v_event_held AS
SELECT e.*, s.code AS site_code, strftime('%Y', e.event_date) AS year
FROM network_event e
JOIN site s ON s.id = e.site_id
CROSS JOIN v_as_of a
WHERE e.event_date <= a.as_of;

-- IND-06: meetings per network (not dissolved) and year against the target.
-- The years are every year in which the site recorded any event (so years
-- without a meeting of this network show 0), from the year it was founded.
CREATE VIEW v_ind06_meetings_per_network AS
SELECT s.code AS site_code,
       n.id AS network_id,
       n.name AS network_name,
       y.year,
       (SELECT COUNT(*) FROM v_event_held e
        WHERE e.network_id = n.id AND e.year = y.year) AS meetings,
       n.meeting_target_per_year AS target,
       ((SELECT COUNT(*) FROM v_event_held e
         WHERE e.network_id = n.id AND e.year = y.year)
        >= n.meeting_target_per_year) AS target_met
FROM network n
JOIN site s ON s.id = n.site_id
JOIN (SELECT DISTINCT site_id, year FROM v_event_held) y
    ON y.site_id = n.site_id
WHERE n.status <> 'dissolved'
  AND (n.established_on IS NULL
       OR y.year >= strftime('%Y', n.established_on));

-- IND-07: meeting participants per site, year and NZFH sector; partners
-- reached (distinct institutions named in the attendance counts).
CREATE VIEW v_ind07_meeting_participants AS
SELECT e.site_code,
       e.year,
       t.nzfh_sector,
       COUNT(DISTINCT e.id) AS meetings,
       SUM(ea.participant_count) AS participants,
       COUNT(DISTINCT ea.institution_id) AS partners_reached
FROM v_event_held e
JOIN event_attendance ea ON ea.event_id = e.id
JOIN institution_type t ON t.code = ea.institution_type_code
GROUP BY e.site_code, e.year, t.nzfh_sector;

-- IND-07b: meetings and head counts per site, year and event type.
CREATE VIEW v_ind07b_meetings_total AS
SELECT e.site_code,
       e.year,
       e.event_type,
       COUNT(*) AS meetings,
       SUM(e.participants_total) AS participants
FROM v_event_held e
GROUP BY e.site_code, e.year, e.event_type;

-- Helper: trainings that started up to as_of, with their year.
CREATE VIEW v_training_held AS
SELECT tr.*, s.code AS site_code, strftime('%Y', tr.start_date) AS year
FROM training tr
JOIN site s ON s.id = tr.site_id
CROSS JOIN v_as_of a
WHERE tr.start_date <= a.as_of;

-- IND-08: trainings per site and year.
CREATE VIEW v_ind08_trainings AS
SELECT tr.site_code,
       tr.year,
       COUNT(*) AS trainings,
       SUM(tr.teaching_units) AS teaching_units,
       SUM(tr.participants_total) AS participants,
       SUM(tr.participants_total * tr.teaching_units) AS participant_units,
       ROUND(AVG(tr.is_interdisciplinary) * 100, 1) AS interdisciplinary_pct,
       SUM(tr.training_kind = 'awareness_child_protection')
           AS awareness_trainings,
       ROUND(AVG(tr.evaluation_mean), 2) AS evaluation_mean
FROM v_training_held tr
GROUP BY tr.site_code, tr.year;

-- IND-08b (full name v_ind08b_trainings_by_sector): training participants
-- per site, year and sector, from the counts per institution type.
CREATE VIEW v_ind08b_trainings_by_sector AS
SELECT tr.site_code,
       tr.year,
       t.nzfh_sector,
       t.sector_code,
       SUM(ta.participant_count) AS participants
FROM v_training_held tr
JOIN training_attendance ta ON ta.training_id = tr.id
JOIN institution_type t ON t.code = ta.institution_type_code
GROUP BY tr.site_code, tr.year, t.nzfh_sector, t.sector_code;

-- IND-09: consultations per site, year and kind; hours; how many came from
-- outside the site's catchment; distinct municipalities advised.
CREATE VIEW v_ind09_consultations AS
SELECT s.code AS site_code,
       strftime('%Y', c.consultation_date) AS year,
       c.consultation_kind,
       COUNT(*) AS consultations,
       ROUND(SUM(c.duration_minutes) / 60.0, 1) AS hours,
       SUM(CASE WHEN c.requesting_municipality_id IS NOT NULL
                 AND (mu.coordinating_site_id IS NULL
                      OR mu.coordinating_site_id <> c.site_id)
                THEN 1 ELSE 0 END) AS outside_catchment,
       COUNT(DISTINCT c.requesting_municipality_id) AS municipalities_advised
FROM consultation c
JOIN site s ON s.id = c.site_id
LEFT JOIN municipality mu ON mu.id = c.requesting_municipality_id
CROSS JOIN v_as_of a
WHERE c.consultation_date <= a.as_of
GROUP BY s.code, strftime('%Y', c.consultation_date), c.consultation_kind;

-- Helper: case reviews released to the state (the row_filter of case_review).
CREATE VIEW v_case_review_released AS
SELECT cr.*, s.code AS site_code
FROM case_review cr
JOIN site s ON s.id = cr.site_id
WHERE cr.released_to_state = 1;

-- IND-10: released case reviews per site and year.
CREATE VIEW v_ind10_case_reviews AS
SELECT r.site_code,
       r.review_year,
       COUNT(*) AS reviews,
       SUM(r.status = 'completed') AS completed,
       SUM(r.status = 'in_progress') AS in_progress,
       SUM(r.status = 'planned') AS planned
FROM v_case_review_released r
GROUP BY r.site_code, r.review_year;

-- IND-10b: findings of released reviews by site, year, category, polarity.
-- The coded category/polarity of every finding of a released review counts;
-- the finding's own released_to_state governs only its statement text.
CREATE VIEW v_ind10b_findings AS
SELECT r.site_code,
       r.review_year,
       f.category,
       f.polarity,
       COUNT(*) AS findings
FROM v_case_review_released r
JOIN case_review_finding f ON f.case_review_id = r.id
GROUP BY r.site_code, r.review_year, f.category, f.polarity;

-- IND-10c (DP-03): released reviews by risk type, state total × year only;
-- cells of 1-2 are NULL with suppressed = 1.
CREATE VIEW v_ind10c_reviews_by_risk_type AS
SELECT 'ALL' AS site_code,
       r.review_year,
       r.risk_type,
       CASE WHEN COUNT(*) BETWEEN 1 AND 2 THEN NULL ELSE COUNT(*) END
           AS reviews,
       (COUNT(*) BETWEEN 1 AND 2) AS suppressed
FROM v_case_review_released r
GROUP BY r.review_year, r.risk_type;

-- IND-10d (DP-03): released reviews by child age band, state total × year.
CREATE VIEW v_ind10d_reviews_by_age_band AS
SELECT 'ALL' AS site_code,
       r.review_year,
       r.child_age_band,
       CASE WHEN COUNT(*) BETWEEN 1 AND 2 THEN NULL ELSE COUNT(*) END
           AS reviews,
       (COUNT(*) BETWEEN 1 AND 2) AS suppressed
FROM v_case_review_released r
GROUP BY r.review_year, r.child_age_band;

-- Helper: measures that may reach the state (the row_filter of measure).
CREATE VIEW v_measure_released AS
SELECT m.*, s.code AS site_code, cr.completed_month AS review_completed_month
FROM measure m
JOIN site s ON s.id = m.site_id
LEFT JOIN case_review cr ON cr.id = m.case_review_id
WHERE m.case_review_id IS NULL OR cr.released_to_state = 1;

-- IND-11: measures per site.  overdue := planned/in progress and due_on
-- before as_of; implementation_rate_pct := implemented / (total - dropped);
-- mean_days_to_implementation from the first day of the review's
-- completed_month to completed_on, over implemented measures of reviews.
CREATE VIEW v_ind11_measures AS
SELECT m.site_code,
       COUNT(*) AS measures,
       SUM(m.status = 'implemented') AS implemented,
       SUM(m.status = 'in_progress') AS in_progress,
       SUM(m.status = 'planned') AS planned,
       SUM(m.status = 'dropped') AS dropped,
       SUM(m.status IN ('planned', 'in_progress')
           AND m.due_on < a.as_of) AS overdue,
       ROUND(100.0 * SUM(m.status = 'implemented')
             / NULLIF(COUNT(*) - SUM(m.status = 'dropped'), 0), 1)
           AS implementation_rate_pct,
       ROUND(AVG(CASE WHEN m.status = 'implemented'
                      THEN julianday(m.completed_on)
                           - julianday(m.review_completed_month || '-01')
                 END), 1) AS mean_days_to_implementation
FROM v_measure_released m
CROSS JOIN v_as_of a
GROUP BY m.site_code;

-- IND-12: per coordination centre and recommendation (also those with no
-- measure), the linked measures and how many of them are implemented.
CREATE VIEW v_ind12_recommendations AS
SELECT s.code AS site_code,
       r.id AS recommendation_id,
       r.source,
       r.ref_code,
       r.title_de,
       r.theme,
       COUNT(DISTINCT x.measure_id) AS measures,
       COUNT(DISTINCT CASE WHEN x.status = 'implemented'
                           THEN x.measure_id END) AS implemented
FROM site s
CROSS JOIN recommendation r
LEFT JOIN (SELECT mr.site_id, mr.recommendation_id, m.id AS measure_id,
                  m.status
           FROM measure_recommendation mr
           JOIN v_measure_released m ON m.id = mr.measure_id) x
    ON x.site_id = s.id AND x.recommendation_id = r.id
WHERE s.site_kind = 'coordination_centre'
GROUP BY s.code, r.id, r.source, r.ref_code, r.title_de, r.theme;

-- IND-13: funds per site, year, funder and purpose.  Cents stay exact
-- integers; euros and the utilisation are derived.
CREATE VIEW v_ind13_funding AS
SELECT s.code AS site_code,
       g.grant_year,
       g.funder,
       g.purpose,
       COUNT(*) AS grants,
       SUM(g.amount_granted_cent) AS granted_cent,
       SUM(g.amount_spent_cent) AS spent_cent,
       SUM(g.amount_granted_cent) / 100.0 AS granted_eur,
       SUM(g.amount_spent_cent) / 100.0 AS spent_eur,
       ROUND(100.0 * SUM(g.amount_spent_cent)
             / NULLIF(SUM(g.amount_granted_cent), 0), 1) AS utilisation_pct,
       SUM(g.report_submitted_on IS NULL
           AND g.report_due_on < a.as_of) AS reports_overdue
FROM funding_grant g
JOIN site s ON s.id = g.site_id
CROSS JOIN v_as_of a
GROUP BY s.code, g.grant_year, g.funder, g.purpose;

-- IND-14: share of active institutions not verified in the last 24 months.
CREATE VIEW v_ind14_directory_currency AS
SELECT s.code AS site_code,
       COUNT(*) AS active_institutions,
       SUM(i.verified_on IS NULL
           OR i.verified_on < date(a.as_of, '-24 months')) AS not_verified_24m,
       ROUND(100.0 * SUM(i.verified_on IS NULL
                         OR i.verified_on < date(a.as_of, '-24 months'))
             / COUNT(*), 1) AS not_verified_pct
FROM institution i
JOIN site s ON s.id = i.site_id
CROSS JOIN v_as_of a
WHERE i.status = 'active'
GROUP BY s.code;

-- Site-local, not a state indicator (reads class P data): contacts due for
-- deletion (RET-CONTACT-LEFT: 6 months after left_on) or for re-verification
-- (RET-CONTACT-VERIFY: 24 months after verified_on, deletion after 3 more
-- months without an answer).  Ids and dates only, no names: the UI joins.
CREATE VIEW v_site_contacts_due AS
SELECT s.code AS site_code,
       c.id AS contact_id,
       c.institution_id,
       CASE
           WHEN c.left_on IS NOT NULL THEN 'delete_left'
           WHEN c.verified_on IS NULL
                OR c.verified_on < date(a.as_of, '-27 months')
               THEN 'delete_unverified'
           ELSE 'reverify'
       END AS action,
       CASE
           WHEN c.left_on IS NOT NULL THEN date(c.left_on, '+6 months')
           WHEN c.verified_on IS NULL THEN NULL
           WHEN c.verified_on < date(a.as_of, '-27 months')
               THEN date(c.verified_on, '+27 months')
           ELSE date(c.verified_on, '+24 months')
       END AS due_on
FROM contact c
JOIN site s ON s.id = c.site_id
CROSS JOIN v_as_of a
WHERE (c.left_on IS NOT NULL AND date(c.left_on, '+6 months') <= a.as_of)
   OR (c.left_on IS NULL
       AND (c.verified_on IS NULL
            OR c.verified_on < date(a.as_of, '-24 months')));

-- DP-02 check for the UI: findings marked released whose review is not.
-- They never leave the site (see case_review_finding), but the release flag
-- is inconsistent and should be corrected.
CREATE VIEW v_check_dp02_findings AS
SELECT s.code AS site_code,
       f.id AS finding_id,
       f.case_review_id
FROM case_review_finding f
JOIN case_review cr ON cr.id = f.case_review_id
JOIN site s ON s.id = f.site_id
WHERE f.released_to_state = 1 AND cr.released_to_state = 0;

-- ===========================================================================
-- 5. Tracking declarations (read by the sync engine, DESIGN.md §4)
--
-- scope_kind 'network' = class R, 'site' = class S, 'private' = class P.
-- private_cols: sync_policy personal_columns + state_hidden_columns.
-- cond_private_cols/cond_private_when: private only when the predicate holds.
-- row_filter: a row must meet it to go to site:NAME at all.
-- Deviations from sync_policy (which only documents the policy):
--   * measure_recommendation gets the row filter of its measure, otherwise
--     the link of an unreleased review's measure would reach the state with
--     a dangling foreign key (and reveal that the measure exists).
--   * references to a document with contains_personal_data = 1 (agreement.
--     document_id, network_event.minutes_document_id, measure.
--     linked_document_id) are conditionally private: that document stays in
--     private:NAME, and the state replica must not hold a dangling key.
--     They are written "NOT IN (public documents)", not "IN (personal
--     documents)": a predicate that looks at other rows must give the same
--     answer on the state's projection, where personal documents are absent,
--     or the state would route and digest the column differently.  For
--     the same reason a NULL reference counts as private: on the state's
--     replica a hidden reference is NULL too.
--   * institution.notes is always private (state_hidden_columns), the
--     address block only for natural persons.
-- report_setting (class L) is deliberately not declared.
-- ===========================================================================

INSERT INTO kz_track_decl
    (tbl, scope_kind, owner_col, private_cols, cond_private_cols,
     cond_private_when, row_filter)
VALUES
    ('site',             'network', NULL, NULL, NULL, NULL, NULL),
    ('municipality',     'network', NULL, NULL, NULL, NULL, NULL),
    ('institution_type', 'network', NULL, NULL, NULL, NULL, NULL),
    ('code_list',        'network', NULL, NULL, NULL, NULL, NULL),
    ('recommendation',   'network', NULL, NULL, NULL, NULL, NULL),
    ('retention_rule',   'network', NULL, NULL, NULL, NULL, NULL),
    ('sync_policy',      'network', NULL, NULL, NULL, NULL, NULL),

    ('app_user',             'private', 'site_id', NULL, NULL, NULL, NULL),
    ('contact',              'private', 'site_id', NULL, NULL, NULL, NULL),
    ('training_participant', 'private', 'site_id', NULL, NULL, NULL, NULL),
    ('audit_log',            'private', 'site_id', NULL, NULL, NULL, NULL),

    ('institution', 'site', 'site_id', 'notes',
     'name,short_name,sponsor_name,street,postal_code,phone,email,website',
     'is_natural_person = 1', NULL),
    ('network', 'site', 'site_id', 'coordinator_user_id', NULL, NULL, NULL),
    ('network_membership', 'site', 'site_id', 'delegate_contact_id',
     NULL, NULL, NULL),
    ('document', 'site', 'site_id', 'file_ref', NULL, NULL,
     'contains_personal_data = 0'),
    ('agreement', 'site', 'site_id', NULL, 'document_id',
     'document_id IS NULL OR document_id NOT IN (SELECT id FROM document'
     || ' WHERE contains_personal_data = 0)', NULL),
    ('agreement_party', 'site', 'site_id', NULL, NULL, NULL, NULL),
    ('network_event', 'site', 'site_id', 'notes', 'minutes_document_id',
     'minutes_document_id IS NULL OR minutes_document_id NOT IN (SELECT id FROM document'
     || ' WHERE contains_personal_data = 0)', NULL),
    ('event_attendance', 'site', 'site_id', NULL, NULL, NULL, NULL),
    ('training', 'site', 'site_id', NULL, NULL, NULL, NULL),
    ('training_attendance', 'site', 'site_id', NULL, NULL, NULL, NULL),
    ('consultation', 'site', 'site_id', 'outcome_note', NULL, NULL, NULL),
    ('case_review', 'site', 'site_id',
     'summary_anonymised,anonymisation_checked_by', NULL, NULL,
     'released_to_state = 1'),
    ('case_review_sector', 'site', 'site_id', NULL, NULL, NULL,
     'case_review_id IN (SELECT id FROM case_review'
     || ' WHERE released_to_state = 1)'),
    ('case_review_finding', 'site', 'site_id', NULL, 'statement',
     'NOT released_to_state = 1',
     'case_review_id IN (SELECT id FROM case_review'
     || ' WHERE released_to_state = 1)'),
    ('measure', 'site', 'site_id', NULL, 'linked_document_id',
     'linked_document_id IS NULL OR linked_document_id NOT IN (SELECT id FROM document'
     || ' WHERE contains_personal_data = 0)',
     'case_review_id IS NULL OR case_review_id IN (SELECT id FROM case_review'
     || ' WHERE released_to_state = 1)'),
    ('measure_recommendation', 'site', 'site_id', NULL, NULL, NULL,
     'measure_id IN (SELECT id FROM measure WHERE case_review_id IS NULL'
     || ' OR case_review_id IN (SELECT id FROM case_review'
     || ' WHERE released_to_state = 1))'),
    ('funding_grant', 'site', 'site_id', NULL, NULL, NULL, NULL);
