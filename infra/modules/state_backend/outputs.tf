output "bucket" {
  description = "State bucket name (backend `bucket`)."
  value       = module.bucket.bucket_id
}

output "lock_table" {
  description = "Lock table name (backend `dynamodb_table`)."
  value       = aws_dynamodb_table.locks.name
}

output "kms_key_arn" {
  description = "KMS key of the state bucket (backend `kms_key_id`)."
  value       = module.bucket.kms_key_arn
}
