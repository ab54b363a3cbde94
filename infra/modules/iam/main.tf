# Two least-privilege roles assumed through IRSA (EKS service-account tokens):
#   pipeline  read/write objects of the lake and backup buckets, use their KMS keys, read its secrets
#   consumer  read-only: list + get the published prefixes of the lake, decrypt, read its secrets
# Policies are built with jsonencode so `terraform test` can assert on them with a mocked provider.

locals {
  lake_objects   = "${var.lake_bucket_arn}/*"
  backup_objects = "${var.backup_bucket_arn}/*"

  pipeline_statements = concat(
    [
      {
        Sid      = "ListBuckets"
        Effect   = "Allow"
        Action   = ["s3:ListBucket", "s3:GetBucketLocation"]
        Resource = [var.lake_bucket_arn, var.backup_bucket_arn]
      },
      {
        Sid      = "ReadWriteObjects"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
        Resource = [local.lake_objects, local.backup_objects]
      },
      {
        Sid      = "UseBucketKeys"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
        Resource = var.kms_key_arns
      },
    ],
    length(var.pipeline_secret_arns) == 0 ? [] : [
      {
        Sid      = "ReadSecrets"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
        Resource = var.pipeline_secret_arns
      },
      {
        Sid      = "DecryptSecrets"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = [var.secrets_kms_key_arn]
      },
    ],
  )

  consumer_statements = concat(
    [
      {
        Sid       = "ListPublishedPrefixes"
        Effect    = "Allow"
        Action    = ["s3:ListBucket"]
        Resource  = [var.lake_bucket_arn]
        Condition = { StringLike = { "s3:prefix" = [for p in var.consumer_prefixes : "${p}*"] } }
      },
      {
        Sid      = "ReadPublishedObjects"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = [for p in var.consumer_prefixes : "${var.lake_bucket_arn}/${p}*"]
      },
      {
        Sid      = "DecryptLake"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:DescribeKey"]
        Resource = var.kms_key_arns
      },
    ],
    length(var.consumer_secret_arns) == 0 ? [] : [
      {
        Sid      = "ReadSecrets"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
        Resource = var.consumer_secret_arns
      },
      {
        Sid      = "DecryptSecrets"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = [var.secrets_kms_key_arn]
      },
    ],
  )
}

resource "aws_iam_role" "pipeline" {
  name                 = "${var.name_prefix}-pipeline"
  description          = "Millpond pipeline: read/write the lake and backups"
  max_session_duration = 3600
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = var.oidc_provider_arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${var.oidc_provider_url}:sub" = "system:serviceaccount:${var.namespace}:${var.pipeline_service_account}"
          "${var.oidc_provider_url}:aud" = "sts.amazonaws.com"
        }
      }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "pipeline" {
  name   = "lake-read-write"
  role   = aws_iam_role.pipeline.id
  policy = jsonencode({ Version = "2012-10-17", Statement = local.pipeline_statements })
}

resource "aws_iam_role" "consumer" {
  name                 = "${var.name_prefix}-consumer"
  description          = "Millpond read-only consumers (Superset, Cube)"
  max_session_duration = 3600
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = var.oidc_provider_arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${var.oidc_provider_url}:aud" = "sts.amazonaws.com"
        }
        "ForAnyValue:StringEquals" = {
          "${var.oidc_provider_url}:sub" = [for sa in var.consumer_service_accounts : "system:serviceaccount:${var.namespace}:${sa}"]
        }
      }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "consumer" {
  name   = "lake-read-only"
  role   = aws_iam_role.consumer.id
  policy = jsonencode({ Version = "2012-10-17", Statement = local.consumer_statements })
}
