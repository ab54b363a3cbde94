# Millpond dev environment. Credentials come from the environment (AWS_PROFILE, SSO or the CI
# role), never from this code.

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project     = "millpond"
      environment = "dev"
      managed-by  = "terraform"
    }
  }
}

module "platform" {
  source = "../../modules/platform"

  environment          = "dev"
  bucket_prefix        = var.bucket_prefix
  oidc_provider_arn    = var.oidc_provider_arn
  oidc_provider_url    = var.oidc_provider_url
  lake_noncurrent_days = 7
  backup_glacier_days  = 30
}
