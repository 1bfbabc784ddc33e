// containers-image-ref: containers-image's own answers (go.podman.io/image/v5, the library CRI-O and
// podman pull with) to the questions pullguard answers for a CRI-O node, so the tests can compare
// the two: how a short name resolves, which registry entry and pull sources registries.conf gives
// a reference, and whether policy.json admits an image.
//
// It prints one JSON object on stdout and exits 0 even when the answer is an error (the error is
// the answer); only a usage error exits non-zero, with its message on stderr.
//
// Every path containers-image would otherwise read from the machine (/etc/containers, ~/.config,
// ~/.docker) is set to a flag's file or to a path that does not exist: the answer depends on the
// test's files alone.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

const usage = `usage:
  containers-image-ref resolve --registries-conf FILE [--registries-conf-dir DIR] [--aliases-conf FILE] --short-name-mode enforcing|disabled|permissive IMAGE
  containers-image-ref registries --registries-conf FILE [--registries-conf-dir DIR] IMAGE
  containers-image-ref policy --policy FILE [--registries-d DIR] [--cert-dir DIR] [--username U --password P] [--registries-conf FILE] [--registries-conf-dir DIR] IMAGE`

func main() {
	// shortnames.Resolve prompts when stdin and stdout are both terminals; with stdin never one,
	// enforcing mode answers as it does for CRI-O (and for the tests): an error, never a prompt.
	if devNull, err := os.Open(os.DevNull); err == nil {
		os.Stdin = devNull
	}
	if len(os.Args) < 2 {
		fail("a subcommand is required")
	}
	// Under it: paths that do not exist, and policy's empty registries.conf and registries.d.
	var err error
	if scratch, err = os.MkdirTemp("", "containers-image-ref-"); err != nil {
		fail(err.Error())
	}
	defer os.RemoveAll(scratch)
	absent := filepath.Join(scratch, "absent")

	var answer any
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "resolve":
		answer = resolve(args, absent)
	case "registries":
		answer = registries(args, absent)
	case "policy":
		answer = policy(args, absent)
	default:
		fail(fmt.Sprintf("unknown subcommand %q", cmd))
	}
	out, err := json.Marshal(answer)
	if err != nil {
		fail(err.Error())
	}
	fmt.Println(string(out))
}

// scratch is removed on every exit, fail's too.
var scratch string

// fail is for usage errors only: exit 2 (as flag does), nothing on stdout.
func fail(message string) {
	if scratch != "" {
		os.RemoveAll(scratch)
	}
	fmt.Fprintf(os.Stderr, "containers-image-ref: %s\n%s\n", message, usage)
	os.Exit(2)
}

// parse parses flags, which come before the one IMAGE argument.
func parse(fs *flag.FlagSet, args []string, required ...string) string {
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(args); err != nil {
		fail(err.Error())
	}
	for _, name := range required {
		if fs.Lookup(name).Value.String() == "" {
			fail(fmt.Sprintf("%s: --%s is required", fs.Name(), name))
		}
	}
	if fs.NArg() != 1 {
		fail(fmt.Sprintf("%s: exactly one IMAGE is required after the flags", fs.Name()))
	}
	return fs.Arg(0)
}

// orAbsent: a flag's path, or one that does not exist so the library's default under /etc is never read.
func orAbsent(value, absent, name string) string {
	if value != "" {
		return value
	}
	return filepath.Join(absent, name)
}

func errorAnswer(err error) map[string]any {
	return map[string]any{"error": err.Error()}
}

func resolve(args []string, absent string) any {
	fs := flag.NewFlagSet("resolve", flag.ContinueOnError)
	conf := fs.String("registries-conf", "", "registries.conf")
	confDir := fs.String("registries-conf-dir", "", "registries.conf.d")
	aliases := fs.String("aliases-conf", "", "the user's short-name-aliases.conf")
	modeName := fs.String("short-name-mode", "", "enforcing, disabled or permissive")
	name := parse(fs, args, "registries-conf", "short-name-mode")
	modes := map[string]types.ShortNameMode{
		"enforcing":  types.ShortNameModeEnforcing,
		"disabled":   types.ShortNameModeDisabled,
		"permissive": types.ShortNameModePermissive,
	}
	mode, ok := modes[*modeName]
	if !ok {
		fail(fmt.Sprintf("resolve: unknown --short-name-mode %q", *modeName))
	}
	sys := &types.SystemContext{
		SystemRegistriesConfPath:    *conf,
		SystemRegistriesConfDirPath: orAbsent(*confDir, absent, "registries.conf.d"),
		UserShortNameAliasConfPath:  orAbsent(*aliases, absent, "short-name-aliases.conf"),
		ShortNameMode:               &mode,
	}
	resolved, err := shortnames.Resolve(sys, name)
	if err != nil {
		return errorAnswer(err)
	}
	candidates := []string{}
	for _, c := range resolved.PullCandidates {
		candidates = append(candidates, c.Value.String())
	}
	return map[string]any{"candidates": candidates, "description": resolved.Description()}
}

type pullSource struct {
	Reference string `json:"reference"`
	Insecure  bool   `json:"insecure"`
}

func registries(args []string, absent string) any {
	fs := flag.NewFlagSet("registries", flag.ContinueOnError)
	conf := fs.String("registries-conf", "", "registries.conf")
	confDir := fs.String("registries-conf-dir", "", "registries.conf.d")
	name := parse(fs, args, "registries-conf")
	sys := &types.SystemContext{
		SystemRegistriesConfPath:    *conf,
		SystemRegistriesConfDirPath: orAbsent(*confDir, absent, "registries.conf.d"),
	}
	// As the docker transport asks (docker/docker_image_src.go newImageSource): the normalized
	// name, ":latest" when untagged, so a tag-only or digest-only mirror is judged as for a pull.
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return errorAnswer(err)
	}
	named = reference.TagNameOnly(named)
	reg, err := sysregistriesv2.FindRegistry(sys, named.Name())
	if err != nil {
		return errorAnswer(err)
	}
	answer := map[string]any{"registry": nil}
	if reg != nil {
		sources, err := reg.PullSourcesFromReference(named)
		if err != nil {
			return errorAnswer(err)
		}
		list := []pullSource{}
		for _, s := range sources {
			list = append(list, pullSource{Reference: s.Reference.String(), Insecure: s.Endpoint.Insecure})
		}
		answer = map[string]any{"blocked": reg.Blocked, "prefix": reg.Prefix, "location": reg.Location, "pullSources": list}
	}
	search, err := sysregistriesv2.UnqualifiedSearchRegistries(sys)
	if err != nil {
		answer["error"] = err.Error()
	} else {
		answer["unqualifiedSearchRegistries"] = append([]string{}, search...)
	}
	return answer
}

type policyAnswer struct {
	Allowed bool   `json:"allowed"`
	Error   string `json:"error,omitempty"`
	// Where it stopped before the policy was evaluated: "reference" (IMAGE), "policy" (policy.json)
	// or "source" (opening the image).
	Stage string `json:"stage,omitempty"`
	// Signatures of every format the source holds; nil when they could not be counted.
	Signatures      *int   `json:"signatures,omitempty"`
	SignaturesError string `json:"signaturesError,omitempty"`
}

func policy(args []string, absent string) any {
	fs := flag.NewFlagSet("policy", flag.ContinueOnError)
	policyPath := fs.String("policy", "", "policy.json")
	registriesD := fs.String("registries-d", "", "registries.d (lookaside and sigstore attachments)")
	certDir := fs.String("cert-dir", "", "a folder holding ca.crt (and client.cert/client.key), as certs.d/<host> would")
	username := fs.String("username", "", "registry user")
	password := fs.String("password", "", "registry password")
	conf := fs.String("registries-conf", "", "registries.conf")
	confDir := fs.String("registries-conf-dir", "", "registries.conf.d")
	name := parse(fs, args, "policy")
	if *conf == "" {
		// A registries.conf path that is set must exist (sysregistriesv2 tolerates a missing file
		// only at its default paths): an empty one, so the reference is pulled as written.
		*conf = filepath.Join(scratch, "registries.conf")
		if err := os.WriteFile(*conf, nil, 0o600); err != nil {
			fail(err.Error())
		}
	}
	if *registriesD == "" {
		// Without registries.d, signatures are looked aside in /var/lib/containers/sigstore
		// (docker/registries_d.go): point that at nothing too.
		*registriesD = filepath.Join(scratch, "registries.d")
		lookaside := "default-docker:\n  lookaside: file://" + filepath.Join(absent, "sigstore") + "\n"
		if err := os.MkdirAll(*registriesD, 0o700); err != nil {
			fail(err.Error())
		}
		if err := os.WriteFile(filepath.Join(*registriesD, "default.yaml"), []byte(lookaside), 0o600); err != nil {
			fail(err.Error())
		}
	}
	sys := &types.SystemContext{
		RegistriesDirPath:           *registriesD,
		SystemRegistriesConfPath:    *conf,
		SystemRegistriesConfDirPath: orAbsent(*confDir, absent, "registries.conf.d"),
		DockerCertPath:              *certDir,
		// Without --cert-dir: no /etc/containers/certs.d or /etc/docker/certs.d.
		DockerPerHostCertDirPath: orAbsent("", absent, "certs.d"),
		// With a user path set, no ~/.docker/config.json or ~/.config/containers/auth.json is read.
		AuthFilePath: orAbsent("", absent, "auth.json"),
	}
	if *username != "" {
		sys.DockerAuthConfig = &types.DockerAuthConfig{Username: *username, Password: *password}
	}
	ref, err := docker.ParseReference("//" + name)
	if err != nil {
		return policyAnswer{Error: err.Error(), Stage: "reference"}
	}
	p, err := signature.NewPolicyFromFile(*policyPath)
	if err != nil {
		return policyAnswer{Error: err.Error(), Stage: "policy"}
	}
	pc, err := signature.NewPolicyContext(p)
	if err != nil {
		return policyAnswer{Error: err.Error(), Stage: "policy"}
	}
	defer pc.Destroy()
	ctx := context.Background()
	// Opened before the policy is evaluated, as copy.Image does for CRI-O and podman: an image
	// that cannot be read is that error, whatever the policy says.
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return policyAnswer{Error: err.Error(), Stage: "source"}
	}
	defer src.Close()
	answer := policyAnswer{}
	allowed, err := pc.IsRunningImageAllowed(ctx, image.UnparsedInstance(src, nil))
	answer.Allowed = allowed
	if err != nil {
		answer.Error = err.Error()
	}
	answer.Signatures, answer.SignaturesError = countSignatures(ctx, src)
	return answer
}

// countSignatures counts signatures of every format. The public GetSignatures returns only
// simple-signing ones (internal/imagesource/impl/compat.go); GetSignaturesWithFormat is exported
// by every source but its result type is internal, so it is called by name. Called after the
// evaluation, so it never changes what the evaluation asked the registry.
func countSignatures(ctx context.Context, src types.ImageSource) (*int, string) {
	method := reflect.ValueOf(src).MethodByName("GetSignaturesWithFormat")
	if !method.IsValid() {
		return nil, "this source has no GetSignaturesWithFormat"
	}
	out := method.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.Zero(method.Type().In(1))})
	if err, _ := out[1].Interface().(error); err != nil {
		return nil, err.Error()
	}
	n := out[0].Len()
	return &n, ""
}
