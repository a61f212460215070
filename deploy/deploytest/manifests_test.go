package deploytest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

const kubeDir = "../kubernetes"

// object is one decoded manifest document.
type object struct {
	file string // relative to kubeDir
	kind string
	obj  any
}

func (o object) String() string { return o.file + ": " + o.kind }

// newTyped returns the typed object for an apiVersion and kind, or nil when
// the manifests may not contain that kind.
func newTyped(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "batch/v1/Job":
		return &batchv1.Job{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/Namespace":
		return &corev1.Namespace{}
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &serviceMonitor{}
	case "kustomize.config.k8s.io/v1beta1/Kustomization", "kustomize.config.k8s.io/v1alpha1/Component":
		return &kustomization{}
	}
	return nil
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// these manifests use; decoding is strict, so any other field fails.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// kustomization is the part of kustomize's Kustomization (and Component)
// these manifests use.
type kustomization struct {
	metav1.TypeMeta `json:",inline"`
	Namespace       string   `json:"namespace,omitempty"`
	Resources       []string `json:"resources,omitempty"`
	Components      []string `json:"components,omitempty"`
	Labels          []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
	} `json:"labels,omitempty"`
	Images []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// loadManifests decodes every YAML document under kubeDir strictly into its
// typed object: an unknown field, a duplicate key, a wrong type or an
// unexpected kind fails the test.
func loadManifests(t *testing.T) []object {
	t.Helper()
	var objs []object
	err := filepath.WalkDir(kubeDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		rel, _ := filepath.Rel(kubeDir, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, doc := range docSeparator.Split(string(data), -1) {
			if len(bytes.TrimSpace(stripComments([]byte(doc)))) == 0 {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Errorf("%s (document %d): %v", rel, i+1, err)
				continue
			}
			typed := newTyped(tm.APIVersion, tm.Kind)
			if typed == nil {
				t.Errorf("%s (document %d): unexpected kind %s/%s", rel, i+1, tm.APIVersion, tm.Kind)
				continue
			}
			if err := yaml.UnmarshalStrict([]byte(doc), typed); err != nil {
				t.Errorf("%s (document %d): strict decode of %s: %v", rel, i+1, tm.Kind, err)
				continue
			}
			objs = append(objs, object{file: rel, kind: tm.Kind, obj: typed})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatal("no manifests found under " + kubeDir)
	}
	return objs
}

func stripComments(b []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// only returns the single object of type T, failing when there is not
// exactly one.
func only[T any](t *testing.T, objs []object) T {
	t.Helper()
	var found []T
	for _, o := range objs {
		if v, ok := o.obj.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("want exactly one %T in the manifests, found %d", zero, len(found))
	}
	return found[0]
}

func TestManifestsDecodeStrictly(t *testing.T) {
	objs := loadManifests(t)
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.kind]++
	}
	for _, k := range []string{"Kustomization", "Deployment", "Job", "PodDisruptionBudget", "Service", "ConfigMap", "ServiceAccount"} {
		if kinds[k] == 0 {
			t.Errorf("no %s among the manifests", k)
		}
	}
}

// TestStrictDecodingRefusesUnknownFields proves the check itself: a typo'd
// field must not pass silently.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	doc := `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: x
          image: x:1
          readinesProbe: {httpGet: {path: /readyz, port: 8080}}
`
	if err := yaml.UnmarshalStrict([]byte(doc), &appsv1.Deployment{}); err == nil {
		t.Fatal("a misspelt field (readinesProbe) decoded without error")
	}
	if err := yaml.UnmarshalStrict([]byte("apiVersion: v1\nkind: Service\nspec:\n  ports: []\n  ports: []\n"), &corev1.Service{}); err == nil {
		t.Fatal("a duplicate key decoded without error")
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	objs := loadManifests(t)
	for _, o := range objs {
		k, ok := o.obj.(*kustomization)
		if !ok {
			continue
		}
		dir := filepath.Dir(o.file)
		listed := map[string]bool{}
		for _, r := range k.Resources {
			listed[filepath.Join(dir, r)] = true
			if _, err := os.Stat(filepath.Join(kubeDir, dir, r)); err != nil {
				t.Errorf("%s lists %s: %v", o.file, r, err)
			}
		}
		for _, c := range k.Components {
			if _, err := os.Stat(filepath.Join(kubeDir, dir, c, "kustomization.yaml")); err != nil {
				t.Errorf("%s: component %s: %v", o.file, c, err)
			}
		}
		// Every manifest file of this folder (not of a sub-kustomization)
		// must be listed, or `kubectl apply -k` silently skips it.
		for _, other := range objs {
			if filepath.Dir(other.file) == dir && other.kind != "Kustomization" && other.kind != "Component" && !listed[other.file] {
				t.Errorf("%s is not listed in %s", other.file, o.file)
			}
		}
		for _, img := range k.Images {
			if img.Digest == "" && (img.NewTag == "" || img.NewTag == "latest") {
				t.Errorf("%s: image %s is not pinned (newTag %q, no digest)", o.file, img.Name, img.NewTag)
			}
		}
	}
}

// podSpecs returns the pod templates of the Deployment and the Job.
func podSpecs(objs []object) map[string]*corev1.PodTemplateSpec {
	out := map[string]*corev1.PodTemplateSpec{}
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			out["Deployment/"+v.Name] = &v.Spec.Template
		case *batchv1.Job:
			out["Job/"+v.Name] = &v.Spec.Template
		}
	}
	return out
}

func TestDeployment(t *testing.T) {
	objs := loadManifests(t)
	d := only[*appsv1.Deployment](t, objs)

	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas = %v, want at least 2 (3)", d.Spec.Replicas)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("selector %v: %v", d.Spec.Selector, err)
	}
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the selector %s does not match the pod template's labels %v", sel, d.Spec.Template.Labels)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update must keep every replica until its successor is ready (maxUnavailable 0), got %+v", d.Spec.Strategy)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	if !slices.Equal(append(slices.Clone(c.Command), c.Args...), []string{"serve", "--no-migrate"}) {
		t.Errorf("the server must run `serve --no-migrate` (the Job migrates), got command %q args %q", c.Command, c.Args)
	}
	probes := map[string]struct {
		p    *corev1.Probe
		path string
	}{
		"startupProbe":   {c.StartupProbe, "/healthz"},
		"livenessProbe":  {c.LivenessProbe, "/healthz"},
		"readinessProbe": {c.ReadinessProbe, "/readyz"},
	}
	for name, pr := range probes {
		if pr.p == nil || pr.p.HTTPGet == nil {
			t.Errorf("%s: missing or not an HTTP probe", name)
			continue
		}
		if pr.p.HTTPGet.Path != pr.path {
			t.Errorf("%s: path %q, want %q", name, pr.p.HTTPGet.Path, pr.path)
		}
		if !hasPort(c, pr.p.HTTPGet.Port.String()) {
			t.Errorf("%s: port %s is not a port of the container", name, pr.p.HTTPGet.Port.String())
		}
	}
	if tsc := d.Spec.Template.Spec.TopologySpreadConstraints; len(tsc) == 0 {
		t.Error("no topology spread constraints")
	} else {
		for _, c := range tsc {
			s, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
			if err != nil || s.Empty() || !s.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("topology spread on %s does not select the Deployment's pods", c.TopologyKey)
			}
		}
	}
	env := envByName(c)
	if e, ok := env["BRIDGE_DATABASE_URL"]; !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Error("BRIDGE_DATABASE_URL must come from a Secret (secretKeyRef)")
	}
	if _, ok := env["BRIDGE_KEY_ENCRYPTION_KEY"]; ok {
		t.Error("the key-encryption key must be mounted as a file (BRIDGE_KEY_ENCRYPTION_KEY_FILE), not set in the environment")
	}
	checkKeyFile(t, "Deployment", &d.Spec.Template.Spec, c)
}

func TestPodsAreLockedDown(t *testing.T) {
	objs := loadManifests(t)
	configMaps := map[string]bool{}
	serviceAccounts := map[string]bool{}
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *corev1.ConfigMap:
			configMaps[v.Name] = true
		case *corev1.ServiceAccount:
			serviceAccounts[v.Name] = true
		}
	}
	images := map[string]bool{}
	for name, tpl := range podSpecs(objs) {
		t.Run(name, func(t *testing.T) {
			ps := &tpl.Spec
			if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
				t.Error("automountServiceAccountToken must be false (the bridge never calls the Kubernetes API)")
			}
			if ps.ServiceAccountName != "" && !serviceAccounts[ps.ServiceAccountName] {
				t.Errorf("service account %q is not in the manifests", ps.ServiceAccountName)
			}
			podNonRoot := ps.SecurityContext != nil && ps.SecurityContext.RunAsNonRoot != nil && *ps.SecurityContext.RunAsNonRoot
			if ps.SecurityContext == nil || ps.SecurityContext.SeccompProfile == nil || ps.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Error("pod seccompProfile must be RuntimeDefault")
			}
			if ps.HostNetwork || ps.HostPID || ps.HostIPC {
				t.Error("host namespaces are not for the bridge")
			}
			volumes := map[string]corev1.Volume{}
			for _, v := range ps.Volumes {
				volumes[v.Name] = v
				if v.HostPath != nil {
					t.Errorf("volume %s: hostPath", v.Name)
				}
			}
			for _, c := range append(slices.Clone(ps.InitContainers), ps.Containers...) {
				sc := c.SecurityContext
				if sc == nil {
					t.Errorf("container %s: no securityContext", c.Name)
					continue
				}
				if !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
					t.Errorf("container %s: runAsNonRoot is not set", c.Name)
				}
				if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
					t.Errorf("container %s: runs as uid 0", c.Name)
				}
				if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
					t.Errorf("container %s: readOnlyRootFilesystem must be true", c.Name)
				}
				if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Errorf("container %s: allowPrivilegeEscalation must be false", c.Name)
				}
				if sc.Privileged != nil && *sc.Privileged {
					t.Errorf("container %s: privileged", c.Name)
				}
				if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
					t.Errorf("container %s: capabilities must drop ALL and add none, got %+v", c.Name, sc.Capabilities)
				}
				for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					req, okReq := c.Resources.Requests[r]
					lim, okLim := c.Resources.Limits[r]
					if !okReq || !okLim {
						t.Errorf("container %s: %s request and limit must both be set", c.Name, r)
						continue
					}
					if req.Cmp(lim) > 0 {
						t.Errorf("container %s: %s request %s exceeds its limit %s", c.Name, r, req.String(), lim.String())
					}
				}
				if err := pinnedImage(c.Image); err != nil {
					t.Errorf("container %s: %v", c.Name, err)
				}
				images[c.Image] = true
				for _, m := range c.VolumeMounts {
					if _, ok := volumes[m.Name]; !ok {
						t.Errorf("container %s: mount of unknown volume %s", c.Name, m.Name)
					}
				}
				for _, ef := range c.EnvFrom {
					if ef.ConfigMapRef != nil && !configMaps[ef.ConfigMapRef.Name] {
						t.Errorf("container %s: envFrom ConfigMap %q is not in the manifests", c.Name, ef.ConfigMapRef.Name)
					}
					if ef.SecretRef != nil {
						t.Errorf("container %s: envFrom a whole Secret; reference the keys one by one", c.Name)
					}
				}
				for _, e := range c.Env {
					if e.Value != "" && looksSecret(e.Name) {
						t.Errorf("container %s: %s is set in plain text; use a secretKeyRef or a mounted file", c.Name, e.Name)
					}
					if e.Value != "" && credentialURL.MatchString(e.Value) {
						t.Errorf("container %s: %s holds a URL with a password", c.Name, e.Name)
					}
				}
			}
		})
	}
	if len(images) != 1 {
		t.Errorf("the server and the migration Job must run the same image (the migrations embedded in it), got %v", images)
	}
}

func TestMigrationJob(t *testing.T) {
	objs := loadManifests(t)
	j := only[*batchv1.Job](t, objs)
	d := only[*appsv1.Deployment](t, objs)
	ps := j.Spec.Template.Spec
	if ps.RestartPolicy != corev1.RestartPolicyNever && ps.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("restartPolicy %q", ps.RestartPolicy)
	}
	if j.Spec.BackoffLimit == nil || j.Spec.ActiveDeadlineSeconds == nil {
		t.Error("the Job needs a backoffLimit and an activeDeadlineSeconds: a migration must not retry forever")
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(ps.Containers))
	}
	c := ps.Containers[0]
	if !slices.Equal(append(slices.Clone(c.Command), c.Args...), []string{"migrate"}) {
		t.Errorf("the Job must run `oidc-bridge migrate`, got command %q args %q", c.Command, c.Args)
	}
	if j.Annotations["argocd.argoproj.io/hook"] != "PreSync" {
		t.Error("the Job must run before the rollout: argocd.argoproj.io/hook: PreSync")
	}
	// The migrator's URL, from its own Secret; the server's from the
	// runtime's (migrations/00007_roles.sql: the service owns nothing).
	dbURL := func(c corev1.Container, name string) string {
		e, ok := envByName(c)[name]
		if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			return ""
		}
		return e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
	}
	server := d.Spec.Template.Spec.Containers[0]
	if got := dbURL(c, "BRIDGE_DATABASE_URL"); got != migratorSecret+"/database-url" {
		t.Errorf("the Job's BRIDGE_DATABASE_URL comes from %q, want the migrator's %s/database-url", got, migratorSecret)
	}
	if got := dbURL(server, "BRIDGE_DATABASE_URL"); got != runtimeSecret+"/database-url" {
		t.Errorf("the server's BRIDGE_DATABASE_URL comes from %q, want the runtime's %s/database-url", got, runtimeSecret)
	}
	if _, ok := envByName(server)["BRIDGE_MIGRATION_DATABASE_URL"]; ok {
		t.Error("the server has BRIDGE_MIGRATION_DATABASE_URL: the owner's login belongs to the Job only")
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == migratorSecret {
			t.Errorf("the server mounts the migrator's Secret %s", migratorSecret)
		}
	}
	for _, ef := range server.EnvFrom {
		if ef.SecretRef != nil && ef.SecretRef.Name == migratorSecret {
			t.Errorf("the server reads the migrator's Secret %s", migratorSecret)
		}
	}
	// The server's Service and PDB must not count the Job's pod.
	sel, _ := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if sel.Matches(labels.Set(j.Spec.Template.Labels)) {
		t.Errorf("the Deployment's selector %s also matches the migration Job's pods", sel)
	}
}

func TestPodDisruptionBudget(t *testing.T) {
	objs := loadManifests(t)
	pdb := only[*policyv1.PodDisruptionBudget](t, objs)
	d := only[*appsv1.Deployment](t, objs)
	j := only[*batchv1.Job](t, objs)
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 {
		t.Errorf("minAvailable = %v, want 2", pdb.Spec.MinAvailable)
	}
	if pdb.Spec.MaxUnavailable != nil {
		t.Error("set minAvailable or maxUnavailable, not both")
	}
	if d.Spec.Replicas != nil && pdb.Spec.MinAvailable != nil && int32(pdb.Spec.MinAvailable.IntValue()) >= *d.Spec.Replicas {
		t.Errorf("minAvailable %d >= replicas %d: no node could ever be drained", pdb.Spec.MinAvailable.IntValue(), *d.Spec.Replicas)
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("PDB selector %v: %v", pdb.Spec.Selector, err)
	}
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the PDB selector %s does not select the Deployment's pods %v", sel, d.Spec.Template.Labels)
	}
	if sel.Matches(labels.Set(j.Spec.Template.Labels)) {
		t.Errorf("the PDB selector %s also selects the migration Job's pods", sel)
	}
}

func TestService(t *testing.T) {
	objs := loadManifests(t)
	svc := only[*corev1.Service](t, objs)
	d := only[*appsv1.Deployment](t, objs)
	j := only[*batchv1.Job](t, objs)
	if len(svc.Spec.Selector) == 0 {
		t.Fatal("the Service has no selector")
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the Service selector %s does not select the Deployment's pods", sel)
	}
	if sel.Matches(labels.Set(j.Spec.Template.Labels)) {
		t.Errorf("the Service selector %s also selects the migration Job's pods", sel)
	}
	for _, p := range svc.Spec.Ports {
		if !hasPort(d.Spec.Template.Spec.Containers[0], p.TargetPort.String()) {
			t.Errorf("Service port %s targets %s, which the container does not expose", p.Name, p.TargetPort.String())
		}
	}
	for _, o := range objs {
		sm, ok := o.obj.(*serviceMonitor)
		if !ok {
			continue
		}
		s, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil || !s.Matches(labels.Set(svc.Labels)) {
			t.Errorf("%s: selector %v does not select the Service (labels %v)", o.file, sm.Spec.Selector, svc.Labels)
		}
		for _, ep := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
				t.Errorf("%s: endpoint port %q is not a named port of the Service", o.file, ep.Port)
			}
			if ep.Path != "/metrics" {
				t.Errorf("%s: path %q, want /metrics", o.file, ep.Path)
			}
		}
	}
}

// TestNoPlaintextSecrets: the manifests reference the Secret, they never
// carry it.
func TestNoPlaintextSecrets(t *testing.T) {
	objs := loadManifests(t)
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *corev1.Secret:
			if len(v.Data) > 0 || len(v.StringData) > 0 {
				t.Errorf("%s: Secret %s carries values; create it out of band (docs/operations.md)", o, v.Name)
			}
		case *corev1.ConfigMap:
			for k, val := range v.Data {
				if looksSecret(k) || credentialURL.MatchString(val) {
					t.Errorf("%s: ConfigMap key %s looks like a secret", o, k)
				}
			}
		}
	}
	// And nothing that looks like key material anywhere in the files.
	pem := regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----|\b[A-Za-z0-9+/]{43}=`)
	_ = filepath.WalkDir(kubeDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if loc := pem.FindIndex(data); loc != nil {
			t.Errorf("%s: looks like key material at byte %d", path, loc[0])
		}
		if loc := credentialURL.FindIndex(data); loc != nil {
			t.Errorf("%s: a URL with a password at byte %d", path, loc[0])
		}
		return nil
	})
}

// TestSecretReferencesAgree: the manifests reference the two external
// Secrets (the runtime's and the migrator's) and their documented keys, and
// nothing else.
func TestSecretReferencesAgree(t *testing.T) {
	objs := loadManifests(t)
	refs := map[string]map[string]bool{}
	add := func(secret, key string) {
		if refs[secret] == nil {
			refs[secret] = map[string]bool{}
		}
		refs[secret][key] = true
	}
	for _, tpl := range podSpecs(objs) {
		for _, v := range tpl.Spec.Volumes {
			if v.Secret != nil {
				for _, it := range v.Secret.Items {
					add(v.Secret.SecretName, it.Key)
				}
			}
		}
		for _, c := range tpl.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					add(e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
				}
			}
		}
	}
	var got []string
	for s, keys := range refs {
		for k := range keys {
			got = append(got, s+"/"+k)
		}
	}
	sort.Strings(got)
	want := []string{migratorSecret + "/database-url", runtimeSecret + "/database-url", runtimeSecret + "/key-encryption-key"}
	if !slices.Equal(got, want) {
		t.Errorf("Secret references %v, want %v (docs/operations.md documents these)", got, want)
	}
}

// The two Secrets created out of band (docs/operations.md): the runtime
// login's URL and the key-encryption key, and the migrator's URL.
const (
	runtimeSecret  = "oidc-bridge"
	migratorSecret = "oidc-bridge-migrator"
)

func hasPort(c corev1.Container, port string) bool {
	for _, p := range c.Ports {
		if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
			return true
		}
	}
	return false
}

func envByName(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

// checkKeyFile: BRIDGE_KEY_ENCRYPTION_KEY_FILE names a file that a Secret
// volume mounted read-only provides.
func checkKeyFile(t *testing.T, what string, ps *corev1.PodSpec, c corev1.Container) {
	t.Helper()
	e, ok := envByName(c)["BRIDGE_KEY_ENCRYPTION_KEY_FILE"]
	if !ok || e.Value == "" {
		t.Errorf("%s: BRIDGE_KEY_ENCRYPTION_KEY_FILE is not set", what)
		return
	}
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(e.Value, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("%s: the key-encryption key's mount %s is not read-only", what, m.MountPath)
		}
		for _, v := range ps.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if it.Path == rel {
					return
				}
			}
		}
	}
	t.Errorf("%s: no Secret volume provides %s", what, e.Value)
}

var (
	secretName    = regexp.MustCompile(`(?i)(PASSWORD|SECRET|TOKEN|DATABASE_URL|ENCRYPTION_KEY$|PRIVATE|CREDENTIAL)`)
	credentialURL = regexp.MustCompile(`[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@`)
)

func looksSecret(name string) bool { return secretName.MatchString(name) }

// pinnedImage: a tag that is not latest, or a digest.
func pinnedImage(image string) error {
	if strings.Contains(image, "@sha256:") {
		return nil
	}
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon <= slash {
		return fmt.Errorf("image %s has no tag", image)
	}
	if tag := image[colon+1:]; tag == "latest" || tag == "" {
		return fmt.Errorf("image %s is not pinned", image)
	}
	return nil
}
