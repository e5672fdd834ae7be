//! The CRDs of the traffic routers' kinds (SMI TrafficSplit, Istio VirtualService and
//! DestinationRule, Gateway API HTTPRoute, Traefik TraefikService, Ambassador Mapping, APISIX
//! ApisixRoute, App Mesh VirtualService, VirtualRouter and VirtualNode) as the tests install
//! them in the sandbox: schemas left open (an object whose `spec` keeps unknown fields), as
//! for any foreign CRD.

/// All router CRDs, one YAML stream for `install_crds_from_yaml`.
pub const ROUTER_CRDS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: trafficsplits.split.smi-spec.io}
spec:
  group: split.smi-spec.io
  scope: Namespaced
  names: {plural: trafficsplits, singular: trafficsplit, kind: TrafficSplit}
  versions:
  - {name: v1alpha1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: virtualservices.networking.istio.io}
spec:
  group: networking.istio.io
  scope: Namespaced
  names: {plural: virtualservices, singular: virtualservice, kind: VirtualService}
  versions:
  - {name: v1alpha3, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: destinationrules.networking.istio.io}
spec:
  group: networking.istio.io
  scope: Namespaced
  names: {plural: destinationrules, singular: destinationrule, kind: DestinationRule}
  versions:
  - {name: v1alpha3, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: httproutes.gateway.networking.k8s.io}
spec:
  group: gateway.networking.k8s.io
  scope: Namespaced
  names: {plural: httproutes, singular: httproute, kind: HTTPRoute}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: traefikservices.traefik.io}
spec:
  group: traefik.io
  scope: Namespaced
  names: {plural: traefikservices, singular: traefikservice, kind: TraefikService}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: mappings.getambassador.io}
spec:
  group: getambassador.io
  scope: Namespaced
  names: {plural: mappings, singular: mapping, kind: Mapping}
  versions:
  - name: v2
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: apisixroutes.apisix.apache.org}
spec:
  group: apisix.apache.org
  scope: Namespaced
  names: {plural: apisixroutes, singular: apisixroute, kind: ApisixRoute}
  versions:
  - name: v2
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: virtualservices.appmesh.k8s.aws}
spec:
  group: appmesh.k8s.aws
  scope: Namespaced
  names: {plural: virtualservices, singular: virtualservice, kind: VirtualService}
  versions:
  - name: v1beta2
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: virtualrouters.appmesh.k8s.aws}
spec:
  group: appmesh.k8s.aws
  scope: Namespaced
  names: {plural: virtualrouters, singular: virtualrouter, kind: VirtualRouter}
  versions:
  - name: v1beta2
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: virtualnodes.appmesh.k8s.aws}
spec:
  group: appmesh.k8s.aws
  scope: Namespaced
  names: {plural: virtualnodes, singular: virtualnode, kind: VirtualNode}
  versions:
  - name: v1beta2
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;
