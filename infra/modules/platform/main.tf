# Everything one Millpond environment needs in AWS, composed from the reusable modules.

locals {
  name      = "millpond-${var.environment}"
  namespace = "millpond-${var.environment}"
  tags      = merge({ project = "millpond", environment = var.environment }, var.tags)
}

# S3 server access logs of the other buckets (log delivery requires SSE-S3 on the target).
module "access_logs" {
  #checkov:skip=CKV_AWS_145:S3 server access log delivery only supports SSE-S3 (AES256) target buckets, so this log bucket cannot use SSE-KMS
  source = "../lake_bucket"

  name                               = "${var.bucket_prefix}-${local.name}-access-logs"
  sse_algorithm                      = "AES256"
  transition_to_ia_days              = 30
  transition_to_glacier_days         = 90
  noncurrent_version_expiration_days = 30
  tags                               = local.tags
}

module "lake" {
  source = "../lake_bucket"

  name                               = "${var.bucket_prefix}-${local.name}-lake"
  access_log_bucket                  = module.access_logs.bucket_id
  transition_to_ia_days              = 0
  noncurrent_version_expiration_days = var.lake_noncurrent_days
  tags                               = local.tags
}

module "backups" {
  source = "../lake_bucket"

  name                               = "${var.bucket_prefix}-${local.name}-backups"
  access_log_bucket                  = module.access_logs.bucket_id
  transition_to_ia_days              = 30
  transition_to_glacier_days         = var.backup_glacier_days
  noncurrent_version_expiration_days = 365
  tags                               = local.tags
}

module "secrets" {
  source = "../secrets"

  name_prefix = local.name
  secrets = {
    pipeline = "JSON: MILLPOND_MONGO_URI, MILLPOND_KAFKA_BOOTSTRAP, SQLMESH__GATEWAYS__DUCKDB__STATE_CONNECTION__HOST/USER/PASSWORD"
    superset = "JSON: MILLPOND_SUPERSET_SECRET_KEY, MILLPOND_SUPERSET_ADMIN_PASSWORD, MILLPOND_SUPERSET_METADATA_URI"
    cube     = "JSON: CUBEJS_API_SECRET, CUBEJS_DB_HOST, CUBEJS_DB_USER, CUBEJS_DB_PASS"
  }
  tags = local.tags
}

module "iam" {
  source = "../iam"

  name_prefix          = local.name
  namespace            = local.namespace
  lake_bucket_arn      = module.lake.bucket_arn
  backup_bucket_arn    = module.backups.bucket_arn
  kms_key_arns         = [module.lake.kms_key_arn, module.backups.kms_key_arn]
  secrets_kms_key_arn  = module.secrets.kms_key_arn
  pipeline_secret_arns = [module.secrets.secret_arns["pipeline"]]
  consumer_secret_arns = [module.secrets.secret_arns["superset"], module.secrets.secret_arns["cube"]]
  oidc_provider_arn    = var.oidc_provider_arn
  oidc_provider_url    = var.oidc_provider_url
  tags                 = local.tags
}
