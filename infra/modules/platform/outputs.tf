output "lake_bucket" {
  description = "Lake bucket name."
  value       = module.lake.bucket_id
}

output "backup_bucket" {
  description = "Backup bucket name."
  value       = module.backups.bucket_id
}

output "pipeline_role_arn" {
  description = "IRSA role of the millpond-pipeline service account."
  value       = module.iam.pipeline_role_arn
}

output "consumer_role_arn" {
  description = "IRSA role of the millpond-superset and millpond-cube service accounts."
  value       = module.iam.consumer_role_arn
}

output "secret_arns" {
  description = "Secrets Manager ARNs by component (values are set out-of-band)."
  value       = module.secrets.secret_arns
}
