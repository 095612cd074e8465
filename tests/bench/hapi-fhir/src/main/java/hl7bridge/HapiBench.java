package hl7bridge;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.parser.IParser;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads the files bench_fhir writes (-w dir) with HAPI FHIR and prints the
 * same columns as bench_fhir. Each case first warms the JIT for the same
 * time it is then measured.
 *   java -cp ... hl7bridge.HapiBench DIR SECONDS BUNDLE_RESOURCES
 */
public final class HapiBench {
    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        double seconds = Double.parseDouble(args[1]);
        int bundleResources = Integer.parseInt(args[2]);
        FhirContext ctx = FhirContext.forR4();
        run(ctx, dir, "mr.json", false, 1, seconds);
        run(ctx, dir, "mr.xml", true, 1, seconds);
        run(ctx, dir, "bundle.json", false, bundleResources, seconds);
        run(ctx, dir, "bundle.xml", true, bundleResources, seconds);
    }

    private static void run(FhirContext ctx, Path dir, String name, boolean xml, int resources,
                            double seconds) throws Exception {
        byte[] bytes = Files.readAllBytes(dir.resolve(name));
        String text = new String(bytes, StandardCharsets.UTF_8);
        long budget = (long) (seconds * 1e9);
        loop(ctx, text, xml, budget); // warm-up
        long t0 = System.nanoTime();
        long iters = loop(ctx, text, xml, budget);
        double s = (System.nanoTime() - t0) / 1e9;
        System.out.printf("hapi-fhir %-12s %9d bytes %8d iters  %10.0f resources/s  %8.1f MB/s%n",
                name, bytes.length, iters, iters * resources / s, iters * bytes.length / s / 1e6);
    }

    private static long loop(FhirContext ctx, String text, boolean xml, long budget) {
        long t0 = System.nanoTime(), iters = 0;
        while (System.nanoTime() - t0 < budget) {
            IParser p = xml ? ctx.newXmlParser() : ctx.newJsonParser();
            if (p.parseResource(text) == null)
                throw new IllegalStateException("no resource");
            iters++;
        }
        return iters;
    }
}
