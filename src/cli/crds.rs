//! `davy crds`: prints the CustomResourceDefinitions of the five kinds as multi-document YAML.

/// Prints the CRDs to stdout.
pub fn run() -> anyhow::Result<i32> {
    print!("{}", crate::api::crd::crds_yaml()?);
    Ok(0)
}
