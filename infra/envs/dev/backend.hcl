# terraform init -backend-config=backend.hcl   (names come from infra/bootstrap outputs)
bucket         = "example-millpond-terraform-state"
key            = "millpond/dev/terraform.tfstate"
region         = "eu-west-1"
dynamodb_table = "millpond-terraform-locks"
encrypt        = true
