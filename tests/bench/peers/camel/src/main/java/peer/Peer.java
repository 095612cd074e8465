package peer;

import ca.uhn.hl7v2.model.Message;
import ca.uhn.hl7v2.util.Terser;
import java.time.Instant;
import java.util.UUID;
import org.apache.camel.Exchange;
import org.apache.camel.builder.RouteBuilder;
import org.apache.camel.component.kafka.KafkaConstants;
import org.apache.camel.main.Main;

/**
 * Peer for tests/bench/peers: camel-mllp receives, camel-hl7 (HAPI) parses, a
 * processor maps PID to a patient event, camel-kafka publishes it with an
 * idempotent producer and acks=all; camel-mllp sends AA after the route
 * completed, i.e. after the broker acknowledged the record.
 *
 *   java -cp 'target/peer.jar:target/lib/*' peer.Peer PORT TOPIC BOOTSTRAP
 */
public final class Peer {
  private static String q(String s) {
    if (s == null || s.isEmpty()) return "null";
    return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
  }

  public static void main(String[] args) throws Exception {
    final String port = args[0], topic = args[1], bootstrap = args[2];
    Main main = new Main();
    main.configure().addRoutesBuilder(new RouteBuilder() {
      @Override
      public void configure() {
        from("mllp://127.0.0.1:" + port + "?maxConcurrentConsumers=1024&autoAck=true")
            .unmarshal().hl7()
            .process((Exchange ex) -> {
              Message m = ex.getIn().getBody(Message.class);
              Terser t = new Terser(m);
              String id = t.get("/.PID-3-1");
              String trig = t.get("/.MSH-9-2");
              String json = "{\"eventId\":" + q(UUID.randomUUID().toString())
                  + ",\"eventType\":" + q("A01".equals(trig) || "A04".equals(trig) ? "patient.created" : "patient.updated")
                  + ",\"timestamp\":" + q(Instant.now().toString())
                  + ",\"data\":{\"patientId\":" + q(id)
                  + ",\"identifiers\":[{\"value\":" + q(id) + ",\"system\":" + q(t.get("/.PID-3-4")) + ",\"type\":" + q(t.get("/.PID-3-5")) + "}]"
                  + ",\"name\":{\"family\":" + q(t.get("/.PID-5-1")) + ",\"given\":[" + q(t.get("/.PID-5-2")) + "]}"
                  + ",\"birthDate\":" + q(t.get("/.PID-7")) + ",\"gender\":" + q(t.get("/.PID-8"))
                  + ",\"address\":[{\"line\":[" + q(t.get("/.PID-11-1")) + "],\"city\":" + q(t.get("/.PID-11-3"))
                  + ",\"state\":" + q(t.get("/.PID-11-4")) + ",\"postalCode\":" + q(t.get("/.PID-11-5")) + "}]"
                  + ",\"telecom\":[{\"system\":\"phone\",\"value\":" + q(t.get("/.PID-13-1")) + "}]}"
                  + ",\"metadata\":{\"source\":\"peer-camel\",\"version\":\"1.0\"}}";
              ex.getIn().setHeader(KafkaConstants.KEY, id);
              ex.getIn().setBody(json);
            })
            .to("kafka:" + topic + "?brokers=" + bootstrap
                + "&enableIdempotence=true&requestRequiredAcks=all&lingerMs=5&keySerializer=org.apache.kafka.common.serialization.StringSerializer");
      }
    });
    System.out.println("ready " + port);
    main.run();
  }
}
