"""The assistant's links to the home: MQTT, GPIO (LEDs and the button)."""
