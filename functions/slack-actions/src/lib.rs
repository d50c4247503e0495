//! `slack-actions`: the Lambda function behind a Function URL that answers Slack's buttons.
