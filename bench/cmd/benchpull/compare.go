package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// compareOptions drive one comparison run.
type compareOptions struct {
	host     string
	images   []string
	rounds   int
	warmup   int
	work     string // pull outputs go under work/pulls
	ocipull  string // "" skips ocipull
	crane    string
	self     string // this program, for the floor
	out      string // markdown report
	versions []string
	link     string // "" for loopback, else the shaped link's description
	noFloor  bool
	// ocipullArgs are extra flags of ocipull pull.
	ocipullArgs []string
}

// measurement is one timed run of one tool.
type measurement struct {
	Image     string        `json:"image"`
	Tool      string        `json:"tool"`
	Round     int           `json:"round"`
	Wall      time.Duration `json:"wall_ns"`
	User      time.Duration `json:"user_ns"`
	Sys       time.Duration `json:"sys_ns"`
	MaxRSSKiB int64         `json:"max_rss_kib"`
	SyncAfter time.Duration `json:"sync_after_ns"`
	Files     int           `json:"files"`
	Bytes     int64         `json:"bytes"`
}

func (m measurement) cpu() time.Duration { return m.User + m.Sys }

// durable is the time until the pulled bytes are on disk: the run and the sync after it.
func (m measurement) durable() time.Duration { return m.Wall + m.SyncAfter }

// tool is a command that pulls ref into dir.
type tool struct {
	name string
	args func(ref, platform, dir string) []string
}

func (o *compareOptions) tools() []tool {
	var ts []tool
	if o.ocipull != "" {
		ts = append(ts, tool{"ocipull", func(ref, platform, dir string) []string {
			a := append([]string{o.ocipull, "pull", "--plain-http", "-q"}, o.ocipullArgs...)
			if platform != "" {
				a = append(a, "--platform", platform)
			}
			return append(a, ref, "-o", dir)
		}})
	}
	ts = append(ts, tool{"crane", func(ref, platform, dir string) []string {
		a := []string{o.crane, "pull", "--insecure", "--format=oci"}
		if platform != "" {
			a = append(a, "--platform", platform)
		}
		return append(a, ref, dir)
	}})
	if o.noFloor {
		return ts
	}
	ts = append(ts, tool{"floor", func(ref, platform, dir string) []string {
		repo, tag, _ := strings.Cut(strings.TrimPrefix(ref, o.host+"/"), ":")
		a := []string{o.self, "floor", "-registry", o.host, "-repo", repo, "-ref", tag, "-o", dir}
		if platform != "" {
			a = append(a, "-platform", platform)
		}
		return a
	}})
	ts = append(ts, tool{"floor-nosync", func(ref, platform, dir string) []string {
		repo, tag, _ := strings.Cut(strings.TrimPrefix(ref, o.host+"/"), ":")
		a := []string{o.self, "floor", "-nosync", "-registry", o.host, "-repo", repo, "-ref", tag, "-o", dir}
		if platform != "" {
			a = append(a, "-platform", platform)
		}
		return a
	}})
	return ts
}

// compare runs every tool on every image, rounds times after warmup untimed rounds,
// alternating the order, and writes the report.
func compare(o compareOptions, logf func(string, ...any)) error {
	pulls := filepath.Join(o.work, "pulls")
	if err := os.RemoveAll(pulls); err != nil {
		return err
	}
	if err := os.MkdirAll(pulls, 0o755); err != nil {
		return err
	}
	syscall.Sync() // what generating and pushing left dirty is not charged to the first run
	loadBefore := loadAverage()
	if l := loadBefore; l > 0.5 {
		logf("warning: load average %.2f before the runs: other work on this machine skews the timings", l)
	}
	baseline, err := measure([]string{o.self, "noop"}, filepath.Join(o.work, "noop.log"))
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	tools := o.tools()
	var all []measurement
	for _, name := range o.images {
		spec := imageSpecs[name]
		ref := o.host + "/" + spec.name + ":latest"
		for round := -o.warmup; round < o.rounds; round++ {
			order := slices.Clone(tools)
			if round%2 != 0 {
				slices.Reverse(order)
			}
			for _, t := range order {
				dir := filepath.Join(pulls, fmt.Sprintf("%s-%s", name, t.name))
				if err := os.RemoveAll(dir); err != nil {
					return err
				}
				m, err := measure(t.args(ref, spec.pullPlatform, dir), filepath.Join(o.work, t.name+".log"))
				if err != nil {
					return fmt.Errorf("%s %s round %d: %w", t.name, name, round, err)
				}
				// Flush what the run left dirty, so the next run does not pay for it.
				start := time.Now()
				syscall.Sync()
				m.SyncAfter = time.Since(start)
				if m.Files, m.Bytes, err = dirBytes(dir); err != nil {
					return err
				}
				if err := os.RemoveAll(dir); err != nil {
					return err
				}
				syscall.Sync()
				m.Image, m.Tool, m.Round = name, t.name, round
				if round < 0 {
					logf("%-6s %-8s warm-up  wall %6.3fs", name, t.name, m.Wall.Seconds())
					continue
				}
				logf("%-6s %-8s round %d  wall %6.3fs  cpu %6.3fs  rss %5.1f MiB  sync %5.3fs  %d files, %.1f MiB",
					name, t.name, round+1, m.Wall.Seconds(), m.cpu().Seconds(), float64(m.MaxRSSKiB)/1024, m.SyncAfter.Seconds(), m.Files, float64(m.Bytes)/(1<<20))
				all = append(all, m)
			}
		}
	}
	report := formatReport(o, tools, all, baseline, loadBefore, loadAverage())
	fmt.Print(report)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			return err
		}
		raw, err := json.MarshalIndent(all, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(strings.TrimSuffix(o.out, ".md")+".json", raw, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// measure runs args to completion and returns its wall time, CPU time and peak RSS.
// The child's output goes to logPath (a file, so no copying goroutine runs meanwhile).
func measure(args []string, logPath string) (measurement, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return measurement{}, err
	}
	defer logf.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	if err != nil {
		out, _ := os.ReadFile(logPath)
		if len(out) > 2000 {
			out = out[len(out)-2000:]
		}
		return measurement{}, fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return measurement{}, fmt.Errorf("no resource usage for %s", args[0])
	}
	return measurement{
		Wall:      wall,
		User:      time.Duration(ru.Utime.Nano()),
		Sys:       time.Duration(ru.Stime.Nano()),
		MaxRSSKiB: ru.Maxrss, // KiB on Linux
	}, nil
}

// targets are the goals of DESIGN.md "Performance": the largest ocipull/crane ratio
// per image, of wall time and of durable time, on loopback and over the shaped link.
var targets = map[bool]map[string]map[string]float64{
	false: {"big": {"wall": 0.80, "durable": 0.60}, "many": {"wall": 0.95, "durable": 0.60}, "multi": {"durable": 0.60}, "one": {"durable": 0.60}},
	true:  {"big": {"wall": 0.40}, "one": {"wall": 0.25}},
}

const rssTargetMiB = 32

func formatReport(o compareOptions, tools []tool, all []measurement, baseline measurement, loadBefore, loadAfter float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# ocipull vs crane, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- machine: %s\n", machine(o.work))
	fmt.Fprintf(&b, "- load average (1 min) before and after the runs: %.2f, %.2f (the runs themselves add about 1; more means other work shared the machine)\n", loadBefore, loadAfter)
	fmt.Fprintf(&b, "- versions: %s; benchpull built with %s\n", strings.Join(o.versions, ", "), runtime.Version())
	if o.link != "" {
		fmt.Fprintf(&b, "- link: %s\n", o.link)
	}
	if len(o.ocipullArgs) > 0 {
		fmt.Fprintf(&b, "- ocipull flags: %s\n", strings.Join(o.ocipullArgs, " "))
	}
	fmt.Fprintf(&b, "- method: reference registry on %s (plain HTTP, filesystem storage, same machine); "+
		"%d timed rounds after %d warm-up per image, order alternating (%s / reversed); every run pulls into a fresh "+
		"directory on the same filesystem, deleted afterwards; `sync` after every run, timed apart as \"sync after\". "+
		"The registry's blobs are in the page cache (warm) for every tool alike.\n",
		o.host, o.rounds, o.warmup, toolNames(tools))
	fmt.Fprintf(&b, "- fsync: ocipull and the floor fsync each blob before renaming it; crane and floor-nosync do not (their writeback shows in \"sync after\"). "+
		"\"durable\" is wall + sync after: the time until the image is on disk.\n")
	fmt.Fprintf(&b, "- peak RSS is the child's ru_maxrss; an empty child measures %.1f MiB here (the runner's own high-water mark, inherited through vfork), so smaller values read as that.\n\n",
		float64(baseline.MaxRSSKiB)/1024)
	for _, name := range o.images {
		spec := imageSpecs[name]
		var runs []measurement
		for _, m := range all {
			if m.Image == name {
				runs = append(runs, m)
			}
		}
		if len(runs) == 0 {
			continue
		}
		desc := fmt.Sprintf("%d × %s layers", spec.layers, mib(float64(spec.layerSize)))
		if spec.pullPlatform != "" {
			desc = fmt.Sprintf("index of %d platforms, pulling %s: %s", len(spec.platforms), spec.pullPlatform, desc)
		}
		fmt.Fprintf(&b, "## %s: %s\n\n", name, desc)
		fmt.Fprintf(&b, "| tool | wall median | wall min–max | CPU user+sys | peak RSS | sync after | durable | written |\n")
		fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---:|---:|\n")
		byTool := map[string][]measurement{}
		for _, m := range runs {
			byTool[m.Tool] = append(byTool[m.Tool], m)
		}
		for _, t := range tools {
			ms := byTool[t.name]
			if len(ms) == 0 {
				continue
			}
			walls := pick(ms, func(m measurement) float64 { return m.Wall.Seconds() })
			fmt.Fprintf(&b, "| %s | %.3f s | %.3f–%.3f s | %.3f s | %s | %.3f s | %.3f s | %s in %d files |\n", t.name,
				median(walls), slices.Min(walls), slices.Max(walls),
				median(pick(ms, func(m measurement) float64 { return m.cpu().Seconds() })),
				mib(median(pick(ms, func(m measurement) float64 { return float64(m.MaxRSSKiB) * 1024 }))),
				median(pick(ms, func(m measurement) float64 { return m.SyncAfter.Seconds() })),
				median(pick(ms, func(m measurement) float64 { return m.durable().Seconds() })),
				mib(float64(ms[0].Bytes)), ms[0].Files)
		}
		b.WriteString("\n")
		for _, c := range []struct {
			a, b, what string
			of         func(measurement) time.Duration
		}{
			{"ocipull", "crane", "wall", func(m measurement) time.Duration { return m.Wall }},
			{"ocipull", "crane", "durable", measurement.durable},
			{"ocipull", "floor", "wall", func(m measurement) time.Duration { return m.Wall }},
			{"crane", "floor-nosync", "wall", func(m measurement) time.Duration { return m.Wall }},
		} {
			ratios := roundRatios(byTool[c.a], byTool[c.b], c.of)
			if len(ratios) == 0 {
				continue
			}
			parts := make([]string, len(ratios))
			for i, r := range ratios {
				parts[i] = fmt.Sprintf("%.2f", r)
			}
			line := fmt.Sprintf("- %s %s/%s per round: %s; median **%.2f**", c.what, c.a, c.b, strings.Join(parts, ", "), median(ratios))
			if target, ok := targets[o.link != ""][name][c.what]; ok && c.a == "ocipull" && c.b == "crane" {
				verdict := "met"
				if median(ratios) > target {
					verdict = "missed"
				}
				line += fmt.Sprintf(" (target ≤ %.2f: %s)", target, verdict)
			}
			b.WriteString(line + "\n")
		}
		if ms := byTool["ocipull"]; len(ms) > 0 {
			peak := slices.Max(pick(ms, func(m measurement) float64 { return float64(m.MaxRSSKiB) / 1024 }))
			verdict := "met"
			if peak > rssTargetMiB {
				verdict = "missed"
			}
			fmt.Fprintf(&b, "- ocipull peak RSS, worst round: %.1f MiB (target ≤ %d MiB: %s)\n", peak, rssTargetMiB, verdict)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func toolNames(ts []tool) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.name
	}
	return strings.Join(names, ", ")
}

// roundRatios returns of(a[i]) / of(b[i]) for the rounds both ran.
func roundRatios(a, b []measurement, of func(measurement) time.Duration) []float64 {
	byRound := map[int]measurement{}
	for _, m := range b {
		byRound[m.Round] = m
	}
	var out []float64
	for _, m := range a {
		if d, ok := byRound[m.Round]; ok && of(d) > 0 {
			out = append(out, of(m).Seconds()/of(d).Seconds())
		}
	}
	return out
}

func pick(ms []measurement, f func(measurement) float64) []float64 {
	out := make([]float64, len(ms))
	for i, m := range ms {
		out[i] = f(m)
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func mib(bytes float64) string {
	return fmt.Sprintf("%.1f MiB", bytes/(1<<20))
}

// machine describes the CPU, memory, kernel and the filesystem of dir.
func machine(dir string) string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kib int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kib); err == nil {
			mem = fmt.Sprintf(", %.1f GiB RAM", float64(kib)/(1<<20))
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d × %s (nproc %d)%s%s, work dir on %s", runtime.NumCPU(), model, runtime.NumCPU(), mem, kernel, fsType(dir))
}

// fsType names the filesystem holding dir.
func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "an unknown filesystem"
	}
	names := map[int64]string{
		0xef53: "ext4", 0x58465342: "xfs", 0x9123683e: "btrfs", 0x01021994: "tmpfs",
		0x794c7630: "overlayfs", 0x6969: "nfs", 0x2fc12fc1: "zfs", 0x65735546: "fuse",
	}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("filesystem 0x%x", st.Type)
}

// loadAverage returns the 1-minute load average, -1 when unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var l float64
	if _, err := fmt.Sscanf(string(b), "%f", &l); err != nil {
		return -1
	}
	return l
}
