//! Rendering: Slack Block Kit, SNS and terminal text (SPEC §6).
