output "pipeline_role_arn" {
  description = "Role ARN for the millpond-pipeline service account (IRSA annotation)."
  value       = aws_iam_role.pipeline.arn
}

output "consumer_role_arn" {
  description = "Role ARN for the read-only consumer service accounts (IRSA annotation)."
  value       = aws_iam_role.consumer.arn
}
