package hb;

import ca.uhn.hl7v2.DefaultHapiContext;
import ca.uhn.hl7v2.HapiContext;
import ca.uhn.hl7v2.model.Composite;
import ca.uhn.hl7v2.model.Message;
import ca.uhn.hl7v2.model.Primitive;
import ca.uhn.hl7v2.model.Segment;
import ca.uhn.hl7v2.model.Structure;
import ca.uhn.hl7v2.model.Type;
import ca.uhn.hl7v2.model.Varies;
import ca.uhn.hl7v2.model.Group;
import ca.uhn.hl7v2.parser.GenericModelClassFactory;
import ca.uhn.hl7v2.parser.PipeParser;
import ca.uhn.hl7v2.util.Terser;
import ca.uhn.hl7v2.validation.impl.NoValidation;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * HAPI side of tests/bench: "bench" does the same work as bench_hl7.c (parse
 * + ten reads, values unescaped by HAPI) and prints the same line format;
 * "dump" prints every non-empty subcomponent of each message for the
 * differential test against the C parser.
 */
public final class Bench {
    /** Terser paths over HAPI's v2.5 structures for the same ten reads as
     *  bench_hl7.c ("/." searches the message; groups are 0-based). */
    static final String[][] CASES = {
        {"adt_a01_300B", "adt_a01.hl7",
         "/MSH-9-1", "/MSH-9-2", "/MSH-10", "/PID-3-1", "/PID-3(1)-1", "/PID-5-1",
         "/PID-5-2", "/PID-7", "/PID-8", "/PID-11-3"},
        {"rde_o11_1.5KB", "rde_o11.hl7",
         "/MSH-10", "/.PID-3-1", "/.PID-5-1", "/.ORC-1", "/.ORC-2-1", "/.RXE-2-1", "/.RXE-2-2",
         "/.RXE-7", "/ORDER(1)/ORC-2-1", "/ORDER(1)/RXE-2-1"},
        {"oru_r01_50KB", "oru_r01.hl7",
         "/MSH-10", "/.PID-3-1", "/.PID-5-1", "/.OBR-4-1", "/.OBX-5", "/.OBSERVATION(99)/OBX-5",
         "/.OBSERVATION(249)/OBX-3-2", "/.OBSERVATION(399)/OBX-5", "/.OBSERVATION(489)/OBX-5", "/.OBSERVATION(497)/NTE-3"},
    };

    public static void main(String[] args) throws Exception {
        if (args.length >= 2 && args[0].equals("bench")) {
            bench(args[1], args.length > 2 ? Double.parseDouble(args[2]) : 3.0);
        } else if (args.length >= 2 && args[0].equals("dump")) {
            for (int i = 1; i < args.length; i++) dump(Path.of(args[i]));
        } else {
            System.err.println("usage: Bench bench <srcdir> [seconds] | dump <file>...");
            System.exit(2);
        }
    }

    /** Generic messages: every segment flat, in message order, so the
     *  paths SEG(n)-F mean the n-th occurrence, as in the C library. */
    static PipeParser genericParser() {
        HapiContext ctx = new DefaultHapiContext(new GenericModelClassFactory());
        ctx.setValidationContext(new NoValidation());
        return ctx.getPipeParser();
    }

    /** HAPI as it is usually run: typed v2.5 structures, no validation. */
    static PipeParser typedParser() {
        HapiContext ctx = new DefaultHapiContext();
        ctx.setValidationContext(new NoValidation());
        return ctx.getPipeParser();
    }

    static void bench(String srcdir, double seconds) throws Exception {
        PipeParser parser = typedParser();
        for (String[] c : CASES) {
            byte[] bytes = Files.readAllBytes(Path.of(srcdir, "tests/fixtures/hl7/bench", c[1]));
            String[] paths = new String[c.length - 2];
            for (int i = 2; i < c.length; i++) paths[i - 2] = c[i];
            // Check once that every read finds something.
            Message m0 = parser.parse(new String(bytes, StandardCharsets.ISO_8859_1));
            Terser t0 = new Terser(m0);
            for (String p : paths) {
                String v = t0.get(p);
                if (v == null || v.isEmpty()) throw new IllegalStateException(c[0] + ": " + p + " finds nothing");
            }
            long sink = 0;
            long warmEnd = System.nanoTime() + 3_000_000_000L; // JIT warm-up
            while (System.nanoTime() < warmEnd) sink += work(parser, bytes, paths);
            long iters = 0;
            long t0ns = System.nanoTime(), t1ns;
            do {
                for (int i = 0; i < 16; i++) sink += work(parser, bytes, paths);
                iters += 16;
                t1ns = System.nanoTime();
            } while ((t1ns - t0ns) < seconds * 1e9);
            double s = (t1ns - t0ns) / 1e9;
            System.out.printf("impl=hapi msg=%s bytes=%d msgs_per_s=%.0f mb_per_s=%.1f iters=%d sink=%d%n",
                c[0], bytes.length, iters / s, iters * (double) bytes.length / s / 1e6, iters, sink % 10);
        }
    }

    static long work(PipeParser parser, byte[] bytes, String[] paths) throws Exception {
        Message m = parser.parse(new String(bytes, StandardCharsets.ISO_8859_1));
        Terser t = new Terser(m);
        long n = 0;
        for (String p : paths) {
            String v = t.get(p);
            if (v != null) n += v.length();
        }
        return n;
    }

    static void dump(Path file) throws Exception {
        PipeParser parser = genericParser();
        String text = new String(Files.readAllBytes(file), StandardCharsets.UTF_8);
        Message m = parser.parse(text);
        List<String> out = new ArrayList<>();
        Map<String, Integer> seen = new HashMap<>();
        walk(m, out, seen);
        System.out.println("# " + file.getFileName());
        for (String line : out) System.out.println(line);
    }

    static void walk(Group g, List<String> out, Map<String, Integer> seen) throws Exception {
        for (String name : g.getNames()) {
            for (Structure s : g.getAll(name)) {
                if (s instanceof Group) {
                    walk((Group) s, out, seen);
                } else {
                    Segment seg = (Segment) s;
                    String id = seg.getName();
                    // Generic messages hold only the segments parsed, so an
                    // empty one (e.g. a bare "NTE") still counts.
                    int n = seen.merge(id, 1, Integer::sum);
                    for (int f = 1; f <= seg.numFields(); f++) {
                        Type[] reps = seg.getField(f);
                        for (int r = 0; r < reps.length; r++) {
                            emitType(reps[r], id + "[" + n + "]-" + f + "[" + (r + 1) + "]", out, 0);
                        }
                    }
                }
            }
        }
    }

    static void emitType(Type t, String prefix, List<String> out, int depth) {
        if (t instanceof Varies) t = ((Varies) t).getData();
        if (t instanceof Composite) {
            Type[] comps = ((Composite) t).getComponents();
            for (int c = 0; c < comps.length; c++) {
                String p = depth == 0 ? prefix + "." + (c + 1) : prefix + "." + (c + 1);
                emitType(comps[c], p, out, depth + 1);
            }
        } else if (t instanceof Primitive) {
            String v = ((Primitive) t).getValue();
            if (v != null && !v.isEmpty()) {
                String p = prefix;
                if (depth == 0) p += ".1.1";
                else if (depth == 1) p += ".1";
                out.add(p + "=" + v.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r"));
            }
        }
        // Extra components HAPI could not place are compared as well.
        if (t != null && t.getExtraComponents() != null) {
            for (int i = 0; i < t.getExtraComponents().numComponents(); i++) {
                emitType(t.getExtraComponents().getComponent(i), prefix + ".x" + i, out, depth + 1);
            }
        }
    }
}
