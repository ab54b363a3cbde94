# Offline: the AWS provider is mocked; the policies are plain jsonencode values we can inspect.
mock_provider "aws" {}

variables {
  name_prefix          = "millpond-test"
  lake_bucket_arn      = "arn:aws:s3:::millpond-test-lake"
  backup_bucket_arn    = "arn:aws:s3:::millpond-test-backups"
  kms_key_arns         = ["arn:aws:kms:eu-west-1:123456789012:key/lake"]
  secrets_kms_key_arn  = "arn:aws:kms:eu-west-1:123456789012:key/secrets"
  pipeline_secret_arns = ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:millpond-test/pipeline"]
  consumer_secret_arns = ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:millpond-test/superset"]
  oidc_provider_arn    = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/TEST"
  oidc_provider_url    = "oidc.eks.eu-west-1.amazonaws.com/id/TEST"
  namespace            = "millpond-test"
}

run "least_privilege" {
  command = apply

  assert {
    condition = alltrue(flatten([
      for s in jsondecode(aws_iam_role_policy.consumer.policy).Statement : [
        for a in s.Action : !contains(["s3:PutObject", "s3:DeleteObject", "kms:Encrypt", "kms:GenerateDataKey"], a)
      ]
    ]))
    error_message = "The consumer role must be read-only."
  }

  assert {
    condition = alltrue(flatten([
      for s in concat(
        jsondecode(aws_iam_role_policy.consumer.policy).Statement,
        jsondecode(aws_iam_role_policy.pipeline.policy).Statement,
        ) : [
        for a in s.Action : !endswith(a, "*")
      ]
    ]))
    error_message = "No wildcard actions."
  }

  assert {
    condition = alltrue(flatten([
      for s in jsondecode(aws_iam_role_policy.consumer.policy).Statement : [
        for r in s.Resource : !strcontains(r, "millpond-test-backups")
      ]
    ]))
    error_message = "Consumers must not reach the backup bucket."
  }

  assert {
    condition     = contains(jsondecode(aws_iam_role_policy.consumer.policy).Statement[1].Resource, "arn:aws:s3:::millpond-test-lake/gold/*")
    error_message = "Consumers read the published gold prefix."
  }

  assert {
    condition     = jsondecode(aws_iam_role.pipeline.assume_role_policy).Statement[0].Condition.StringEquals["oidc.eks.eu-west-1.amazonaws.com/id/TEST:sub"] == "system:serviceaccount:millpond-test:millpond-pipeline"
    error_message = "Only the pipeline service account may assume the pipeline role."
  }
}
