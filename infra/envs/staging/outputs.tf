output "lake_bucket" {
  description = "Lake bucket name."
  value       = module.platform.lake_bucket
}

output "backup_bucket" {
  description = "Backup bucket name."
  value       = module.platform.backup_bucket
}

output "pipeline_role_arn" {
  description = "Annotate the millpond-pipeline service account with this ARN."
  value       = module.platform.pipeline_role_arn
}

output "consumer_role_arn" {
  description = "Annotate the millpond-superset and millpond-cube service accounts with this ARN."
  value       = module.platform.consumer_role_arn
}

output "secret_arns" {
  description = "Secrets to fill with `aws secretsmanager put-secret-value`."
  value       = module.platform.secret_arns
}
