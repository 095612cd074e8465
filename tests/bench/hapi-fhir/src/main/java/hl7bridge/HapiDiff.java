package hl7bridge;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.fhirpath.IFhirPath;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.hl7.fhir.instance.model.api.IBase;
import org.hl7.fhir.instance.model.api.IPrimitiveType;
import org.hl7.fhir.r4.model.*;

/**
 * Differential reference: builds a set of R4 resources, writes each with
 * HAPI as JSON and as XML, and writes HAPI's FHIRPath answers for every
 * expression of EXPRS (one per line) into NN.expected (one line per
 * expression: the primitive values joined by '|', "<obj>" for complex
 * values, or "!error"). tests/bench/diff_fhir_hapi then checks that our
 * readers give equal trees and our FHIRPath gives the same answers.
 *   java -cp ... hl7bridge.HapiDiff OUTDIR EXPRS
 */
public final class HapiDiff {
    public static void main(String[] args) throws Exception {
        Path out = Path.of(args[0]);
        List<String> exprs = Files.readAllLines(Path.of(args[1]), StandardCharsets.UTF_8);
        FhirContext ctx = FhirContext.forR4();
        IFhirPath fp = ctx.newFhirPath();
        List<Resource> all = build();
        Files.createDirectories(out);
        for (int i = 0; i < all.size(); i++) {
            Resource r = all.get(i);
            String base = String.format("%02d-%s", i, r.fhirType());
            Files.writeString(out.resolve(base + ".json"),
                    ctx.newJsonParser().setPrettyPrint(i % 2 == 0).encodeResourceToString(r));
            Files.writeString(out.resolve(base + ".xml"),
                    ctx.newXmlParser().setPrettyPrint(i % 2 == 1).encodeResourceToString(r));
            // Evaluate on the resource as re-read from JSON, as the bridge does.
            Resource back = (Resource) ctx.newJsonParser().parseResource(
                    Files.readString(out.resolve(base + ".json")));
            StringBuilder sb = new StringBuilder();
            for (String e : exprs) {
                if (e.isBlank())
                    continue;
                sb.append(answer(fp, back, e)).append('\n');
            }
            Files.writeString(out.resolve(base + ".expected"), sb.toString());
        }
        System.out.println("wrote " + all.size() + " resources, " + exprs.size() + " expressions");
    }

    private static String answer(IFhirPath fp, Resource r, String e) {
        try {
            List<IBase> res = fp.evaluate(r, e, IBase.class);
            List<String> parts = new ArrayList<>();
            for (IBase b : res) {
                if (b instanceof IPrimitiveType<?> p)
                    parts.add(p.getValueAsString());
                else
                    parts.add("<obj>");
            }
            return String.join("|", parts);
        } catch (Exception ex) {
            if (System.getenv("HAPI_DIFF_VERBOSE") != null)
                System.err.println(e + ": " + ex);
            return "!error";
        }
    }

    private static CodeableConcept cc(String system, String code, String display) {
        return new CodeableConcept().addCoding(new Coding(system, code, display));
    }

    private static final String RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm";
    private static final String V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203";

    private static Patient patient(int i) {
        Patient p = new Patient();
        p.setId("pat-" + i);
        p.addIdentifier().setSystem("urn:oid:1.2.3." + i).setValue("MRN-" + (1000 + i))
                .setType(cc(V2_0203, "MR", "Medical record number"));
        if (i % 3 == 0)
            p.addIdentifier().setSystem("http://hl7.org/fhir/sid/us-ssn").setValue("999-00-" + (1000 + i))
                    .setType(cc(V2_0203, "SS", null));
        HumanName n = p.addName().setFamily("Family" + i).addGiven("Given" + i);
        if (i % 2 == 0)
            n.addGiven("Middle" + i);
        if (i % 4 == 0)
            n.getGiven().get(0).addExtension("http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier",
                    new CodeType("CL"));
        if (i % 5 == 0)
            p.addName().setUse(HumanName.NameUse.NICKNAME).addGiven("Nick" + i);
        p.setActive(i % 2 == 0);
        p.setGender(i % 2 == 0 ? Enumerations.AdministrativeGender.FEMALE
                               : Enumerations.AdministrativeGender.MALE);
        p.setBirthDateElement(new DateType("19" + (50 + i) + "-0" + (1 + i % 9) + "-1" + (i % 10)));
        if (i % 3 == 1)
            p.getBirthDateElement().addExtension("http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                    new DateTimeType("19" + (50 + i) + "-0" + (1 + i % 9) + "-1" + (i % 10) + "T08:30:00Z"));
        if (i % 2 == 1)
            p.setDeceased(new BooleanType(false));
        else if (i % 4 == 2)
            p.setDeceased(new DateTimeType("2020-01-0" + (1 + i % 9)));
        if (i % 3 == 2)
            p.setMultipleBirth(new IntegerType(2));
        p.addTelecom().setSystem(ContactPoint.ContactPointSystem.PHONE).setValue("555-01" + i).setRank(1);
        p.addAddress().addLine("1 Main St").addLine("Unit " + i).setCity("Springfield").setPostalCode("627" + i);
        p.addExtension("http://example.org/fhir/StructureDefinition/consent-flag", new BooleanType(i % 2 == 0));
        if (i % 5 == 1) {
            p.getText().setStatus(Narrative.NarrativeStatus.GENERATED);
            p.getText().setDivAsString("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Patient " + i + "</p></div>");
        }
        p.addContact().setName(new HumanName().setFamily("Contact" + i).addGiven("C" + i))
                .addRelationship(cc("http://terminology.hl7.org/CodeSystem/v2-0131", "N", null));
        p.setManagingOrganization(new Reference("Organization/org-" + i));
        return p;
    }

    private static MedicationRequest medicationRequest(int i, boolean contained) {
        MedicationRequest mr = new MedicationRequest();
        mr.setId("mr-" + i);
        mr.addIdentifier().setSystem("http://example.org/rx").setValue("RX-" + i);
        mr.setStatus(i % 3 == 0 ? MedicationRequest.MedicationRequestStatus.ACTIVE
                                : MedicationRequest.MedicationRequestStatus.COMPLETED);
        mr.setIntent(MedicationRequest.MedicationRequestIntent.ORDER);
        if (contained) {
            Medication m = new Medication();
            m.setId("med" + i);
            m.setCode(cc(RXNORM, "3140" + i, "Drug " + i));
            m.addIngredient().setItem(cc(RXNORM, "2904" + i, null)).setIsActive(true)
                    .setStrength(new Ratio().setNumerator(new Quantity(10 + i).setUnit("mg"))
                            .setDenominator(new Quantity(1).setUnit("tablet")));
            mr.addContained(m);
            mr.setMedication(new Reference("#med" + i));
        } else {
            CodeableConcept c = cc(RXNORM, "19736" + i, "Drug " + i + " 5 MG Oral Tablet");
            c.addCoding(new Coding("http://snomed.info/sct", "38686" + i, null));
            c.setText("Drug " + i);
            mr.setMedication(c);
        }
        mr.setSubject(new Reference("Patient/pat-" + i).setDisplay("Patient " + i));
        mr.setAuthoredOnElement(new DateTimeType("2024-03-0" + (1 + i % 9) + "T10:20:00Z"));
        mr.setRequester(new Reference("Practitioner/prac-" + i));
        mr.setDoNotPerform(i % 4 == 3);
        Dosage d = mr.addDosageInstruction().setSequence(1).setText((i + 1) + " mg daily");
        d.getTiming().getRepeat().setFrequency(1).setPeriod(1).setPeriodUnit(Timing.UnitsOfTime.D);
        d.addDoseAndRate().setDose(new Quantity(i + 1).setUnit("mg"));
        d.setAsNeeded(new BooleanType(i % 2 == 0));
        mr.getDispenseRequest().setNumberOfRepeatsAllowed(i % 4)
                .setQuantity(new Quantity(30 + i).setUnit("tablet"));
        mr.getSubstitution().setAllowed(new BooleanType(i % 2 == 1));
        mr.addNote().setText("Note " + i);
        return mr;
    }

    private static Medication medication(int i) {
        Medication m = new Medication();
        m.setId("med-" + i);
        m.setCode(cc(RXNORM, "8609" + i, "Metformin " + (250 * (1 + i % 3)) + " MG"));
        m.setStatus(Medication.MedicationStatus.ACTIVE);
        m.addIngredient().setItem(new Reference("Substance/s-" + i)).setIsActive(i % 2 == 0);
        m.getBatch().setLotNumber("LOT-" + i).setExpirationDateElement(new DateTimeType("2026-0" + (1 + i % 9) + "-01"));
        return m;
    }

    private static Bundle bundle(int i) {
        Bundle b = new Bundle();
        b.setId("b-" + i);
        b.setType(i % 2 == 0 ? Bundle.BundleType.TRANSACTION : Bundle.BundleType.COLLECTION);
        Patient p = patient(i);
        p.setId((String) null);
        MedicationRequest mr = medicationRequest(i, false);
        mr.setId((String) null);
        String pu = "urn:uuid:00000000-0000-4000-8000-0000000000" + String.format("%02d", i);
        mr.setSubject(new Reference(pu));
        Bundle.BundleEntryComponent e1 = b.addEntry().setFullUrl(pu).setResource(p);
        Bundle.BundleEntryComponent e2 = b.addEntry()
                .setFullUrl("urn:uuid:10000000-0000-4000-8000-0000000000" + String.format("%02d", i))
                .setResource(mr);
        if (b.getType() == Bundle.BundleType.TRANSACTION) {
            e1.getRequest().setMethod(Bundle.HTTPVerb.POST).setUrl("Patient");
            e2.getRequest().setMethod(Bundle.HTTPVerb.POST).setUrl("MedicationRequest");
        }
        b.setTotal(2);
        return b;
    }

    private static List<Resource> build() {
        List<Resource> all = new ArrayList<>();
        for (int i = 0; i < 8; i++)
            all.add(patient(i));
        for (int i = 0; i < 8; i++)
            all.add(medicationRequest(i, i % 2 == 1));
        for (int i = 0; i < 6; i++)
            all.add(medication(i));
        for (int i = 0; i < 6; i++)
            all.add(bundle(i));
        for (int i = 8; i < 12; i++)
            all.add(i % 2 == 0 ? patient(i) : medicationRequest(i, true));
        return all;
    }
}
