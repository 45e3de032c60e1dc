package unpack

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocistream/ocistream/errdef"
	"github.com/ocistream/ocistream/ocitypes"
)

// defaultPath is the PATH a process gets when the image sets none (as docker and
// runc spec give).
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Annotations of the image-spec's conversion to a runtime configuration.
const (
	annotationOS           = "org.opencontainers.image.os"
	annotationArch         = "org.opencontainers.image.architecture"
	annotationVariant      = "org.opencontainers.image.variant"
	annotationOSVersion    = "org.opencontainers.image.os.version"
	annotationOSFeatures   = "org.opencontainers.image.os.features"
	annotationAuthor       = "org.opencontainers.image.author"
	annotationCreated      = "org.opencontainers.image.created"
	annotationStopSignal   = "org.opencontainers.image.stopSignal"
	annotationExposedPorts = "org.opencontainers.image.exposedPorts"
)

// RuntimeConfig returns the OCI runtime configuration (a bundle's config.json) for
// an image config img whose root filesystem rootfs is, as the image-spec's
// conversion rules say: args are the entrypoint followed by the command, env,
// working directory (default "/"), the user resolved to numeric ids through the
// rootfs's /etc/passwd and /etc/group (read inside rootfs; an unknown name is an
// error), the platform, author, creation time, stop signal, exposed ports and
// labels as annotations (labels win).
//
// The rest is what "runc spec" writes, so the bundle runs with "runc run": the
// root at "rootfs" (writable), the pid, network, ipc, uts and mount namespaces,
// /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys and the cgroup file system
// mounted, a few capabilities, no new privileges, terminal off. To run it rootless,
// add a user namespace with uid and gid mappings, as "runc spec --rootless" does.
// An image with neither entrypoint nor command has nothing to run and fails.
func RuntimeConfig(img ocitypes.Image, rootfs *os.Root) (*specs.Spec, error) {
	c := img.Config
	args := append(slices.Clone(c.Entrypoint), c.Cmd...)
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: the image has neither entrypoint nor cmd: a runtime bundle needs something to run", errdef.ErrUnsupported)
	}
	cwd := c.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	if !strings.HasPrefix(cwd, "/") {
		return nil, fmt.Errorf("%w: image config: working dir %q is not absolute", errdef.ErrInvalidManifest, cwd)
	}
	user, home, err := resolveUser(rootfs, c.User)
	if err != nil {
		return nil, err
	}
	env := slices.Clone(c.Env)
	if !hasEnv(env, "PATH") {
		env = append(env, defaultPath)
	}
	if home != "" && !hasEnv(env, "HOME") {
		env = append(env, "HOME="+home)
	}

	spec := baseSpec()
	spec.Process.Args = args
	spec.Process.Env = env
	spec.Process.Cwd = cwd
	spec.Process.User = user
	spec.Annotations = annotations(img)
	return spec, nil
}

// hasEnv reports whether env sets name.
func hasEnv(env []string, name string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == name {
			return true
		}
	}
	return false
}

// annotations returns the image-spec conversion's annotations of img.
func annotations(img ocitypes.Image) map[string]string {
	a := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			a[k] = v
		}
	}
	set(annotationOS, img.OS)
	set(annotationArch, img.Architecture)
	set(annotationVariant, img.Variant)
	set(annotationOSVersion, img.OSVersion)
	set(annotationOSFeatures, strings.Join(img.OSFeatures, ","))
	set(annotationAuthor, img.Author)
	if img.Created != nil {
		set(annotationCreated, img.Created.UTC().Format("2006-01-02T15:04:05Z07:00"))
	}
	set(annotationStopSignal, img.Config.StopSignal)
	ports := make([]string, 0, len(img.Config.ExposedPorts))
	for p := range img.Config.ExposedPorts {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	set(annotationExposedPorts, strings.Join(ports, ","))
	for k, v := range img.Config.Labels {
		a[k] = v
	}
	return a
}

// baseSpec is "runc spec" with terminal off and a writable root.
func baseSpec() *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Terminal:        false,
			NoNewPrivileges: true,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps,
				Effective: caps,
				Permitted: caps,
			},
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
		},
		Hostname: "container",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
			},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// writeRuntimeConfig writes spec as JSON into the file name.
func writeRuntimeConfig(name string, spec *specs.Spec) error {
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(name, append(b, '\n'), 0o644)
}

// maxAccountFile bounds what is read of /etc/passwd or /etc/group.
const maxAccountFile = 4 << 20

// account is a line of /etc/passwd or /etc/group.
type account struct {
	name    string
	id      uint32
	gid     uint32   // passwd: the primary group
	home    string   // passwd
	members []string // group
}

// resolveUser turns the image config's user ("", "name", "uid", "name:group",
// "uid:gid", ...) into numeric ids, reading /etc/passwd and /etc/group inside
// rootfs when names are given or a user's groups are wanted, and returns the
// user's home directory when /etc/passwd names one.
func resolveUser(rootfs *os.Root, spec string) (specs.User, string, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	users, err := readAccounts(rootfs, "etc/passwd", parsePasswd)
	if err != nil {
		return specs.User{}, "", err
	}
	var u specs.User
	var home, name string
	if uid, err := parseID(userPart); err == nil {
		u.UID = uid
		for _, a := range users {
			if a.id == uid {
				u.GID, home, name = a.gid, a.home, a.name
				break
			}
		}
	} else {
		found := false
		for _, a := range users {
			if a.name == userPart {
				u.UID, u.GID, home, name, found = a.id, a.gid, a.home, a.name, true
				break
			}
		}
		if !found {
			return specs.User{}, "", fmt.Errorf("%w: image config: user %q is not in the image's /etc/passwd", errdef.ErrInvalidManifest, userPart)
		}
	}
	groups, err := readAccounts(rootfs, "etc/group", parseGroup)
	if err != nil {
		return specs.User{}, "", err
	}
	if hasGroup {
		if gid, err := parseID(groupPart); err == nil {
			u.GID = gid
		} else {
			found := false
			for _, g := range groups {
				if g.name == groupPart {
					u.GID, found = g.id, true
					break
				}
			}
			if !found {
				return specs.User{}, "", fmt.Errorf("%w: image config: group %q is not in the image's /etc/group", errdef.ErrInvalidManifest, groupPart)
			}
		}
		return u, home, nil
	}
	if name != "" {
		for _, g := range groups {
			if g.id != u.GID && slices.Contains(g.members, name) && !slices.Contains(u.AdditionalGids, g.id) {
				u.AdditionalGids = append(u.AdditionalGids, g.id)
			}
		}
	}
	return u, home, nil
}

// parseID parses a numeric user or group id.
func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// readAccounts reads and parses /etc/passwd or /etc/group (name, relative to
// rootfs) inside rootfs; an absent file has no accounts.
func readAccounts(rootfs *os.Root, name string, parse func([]string) (account, bool)) ([]account, error) {
	f, err := openInRoot(rootfs, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read /%s of the image: %w", name, err)
	}
	defer f.Close()
	var accounts []account
	sc := bufio.NewScanner(io.LimitReader(f, maxAccountFile))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if a, ok := parse(strings.Split(line, ":")); ok {
			accounts = append(accounts, a)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /%s of the image: %w", name, err)
	}
	return accounts, nil
}

// openInRoot opens the file name inside rootfs, following links as if rootfs were
// "/" (images link /etc/passwd elsewhere at times).
func openInRoot(rootfs *os.Root, name string) (*os.File, error) {
	u := &unpacker{root: rootfs, dirCache: map[string]string{}}
	for range maxSymlinks {
		p, err := u.resolve(name, false)
		if err != nil {
			return nil, err
		}
		fi, err := rootfs.Lstat(p)
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("/%s is not a regular file", name)
			}
			return rootfs.Open(p)
		}
		target, err := rootfs.Readlink(p)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(target, "/") {
			name = strings.TrimLeft(target, "/")
		} else {
			name = path.Join(path.Dir(p), target)
		}
	}
	return nil, fmt.Errorf("/%s: too many levels of symbolic links", name)
}

func parsePasswd(f []string) (account, bool) {
	if len(f) < 7 {
		return account{}, false
	}
	uid, err1 := parseID(f[2])
	gid, err2 := parseID(f[3])
	if err1 != nil || err2 != nil {
		return account{}, false
	}
	return account{name: f[0], id: uid, gid: gid, home: f[5]}, true
}

func parseGroup(f []string) (account, bool) {
	if len(f) < 4 {
		return account{}, false
	}
	gid, err := parseID(f[2])
	if err != nil {
		return account{}, false
	}
	var members []string
	if f[3] != "" {
		members = strings.Split(f[3], ",")
	}
	return account{name: f[0], id: gid, members: members}, true
}
