"""A small home for the tests with a real Home Assistant: two lights in two areas, and a
long-lived token for the speaker to learn their names with."""

from __future__ import annotations

from ha_harness import HomeAssistant, Websocket

HOME_YAML = (
    """\
input_boolean:
  kitchen_power:
    name: Kitchen power
    initial: false
  lounge_power:
    name: Lounge power
    initial: true
input_number:
  lounge_level:
    name: Lounge level
    min: 0
    max: 255
    initial: 255
light:
  - platform: template
    lights:
"""
    + "".join(
        f"""\
      {light}:
        unique_id: ttbt5-{light}
        friendly_name: {name}
        value_template: "{{{{ is_state('input_boolean.{power}', 'on') }}}}"
        turn_on:
          action: input_boolean.turn_on
          target:
            entity_id: input_boolean.{power}
        turn_off:
          action: input_boolean.turn_off
          target:
            entity_id: input_boolean.{power}
"""
        for light, name, power in (
            ("kitchen_light", "Kitchen Light", "kitchen_power"),
            ("reading_lamp", "Reading Lamp", "lounge_power"),
        )
    )
    + """\
        level_template: "{{ states('input_number.lounge_level') | int }}"
        set_level:
          - action: input_number.set_value
            target:
              entity_id: input_number.lounge_level
            data:
              value: "{{ brightness }}"
          - action: input_boolean.turn_on
            target:
              entity_id: input_boolean.lounge_power
"""
)
"""Two lights (template lights over input booleans, so their state is Home Assistant's
own; the reading lamp, last, dims over an input number), exposed to Assist as new lights
are; placed in areas by ``lights_in_areas_and_token``."""


def lights_in_areas_and_token(ha: HomeAssistant, ws: Websocket) -> str:
    """The lights put in their areas (the kitchen light in Kitchen, the reading lamp in
    Living Room: areas onboarding made), and a long-lived token for the speaker, as a
    user makes them."""
    areas = {a["name"]: a["area_id"] for a in ws.command("config/area_registry/list")}
    for light, area in (("light.kitchen_light", "Kitchen"), ("light.reading_lamp", "Living Room")):
        if area not in areas:
            areas[area] = ws.command("config/area_registry/create", name=area)["area_id"]
        ws.command("config/entity_registry/update", entity_id=light, area_id=areas[area])
    return ha.long_lived_token(ws, "TTBT5 speaker")
