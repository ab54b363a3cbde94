# Remote state for every environment root: a versioned, SSE-KMS, private S3 bucket (the lake_bucket
# module) and a DynamoDB lock table (encrypted with the same key, point-in-time recovery on).
# Applied once per AWS account from infra/bootstrap; the env roots then use `backend "s3"`.

module "bucket" {
  source = "../lake_bucket"

  name                               = var.bucket_name
  access_log_bucket                  = var.access_log_bucket
  transition_to_ia_days              = 0
  noncurrent_version_expiration_days = 365
  tags                               = var.tags
}

resource "aws_dynamodb_table" "locks" {
  name                        = var.lock_table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "LockID"
  deletion_protection_enabled = true

  attribute {
    name = "LockID"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = module.bucket.kms_key_arn
  }

  tags = var.tags
}
