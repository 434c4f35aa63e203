"""DATEX II v3.7 Parking publications: the static table of every lot and their live status.

Written straight as text (escaped), which keeps a 2,000-lot status well under the 200 ms
budget; tests/feeds check the structure, and the output was validated against the official
v3.7 schemas while it was built (they carry no licence, so they are not in the repository).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final
from xml.sax.saxutils import escape, quoteattr

from feeds.formats import iso
from feeds.model import CategoryView, LotView, Trend
from streetsense.hours import OpeningStatus, week_schedule

VERSION: Final = "3.7"
MEDIA_TYPE: Final = "application/xml"
TABLE_ID: Final = "streetsense-parking"
PROFILE: Final = f"streetsense parking, DATEX II v{VERSION}"
NAMESPACES: Final = (
    'xmlns:d2="http://datex2.eu/schema/3/d2Payload" '
    'xmlns:com="http://datex2.eu/schema/3/common" '
    'xmlns:fac="http://datex2.eu/schema/3/facilities" '
    'xmlns:loc="http://datex2.eu/schema/3/locationReferencing" '
    'xmlns:prk="http://datex2.eu/schema/3/parking" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)
_DAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_STRUCTURE: Final = {"off_street": "offStreetStructure", "on_street": "onStreet"}
_OPENING: Final = {
    OpeningStatus.OPEN: "open",
    OpeningStatus.CLOSED: "closed",
    OpeningStatus.UNKNOWN: "statusUnknown",
}
_TREND: Final = {Trend.FILLING: "increasing", Trend.EMPTYING: "decreasing", Trend.STEADY: "stable"}
_ALMOST_FULL: Final = 0.9
# Who a category's spaces are for, in DATEX II's qualification terms.
_QUALIFICATION: Final = {
    "disabled": "<fac:userQualification><fac:userGroup>personsWithDisabilities</fac:userGroup>"
    "</fac:userQualification>",
    "women": "<fac:userQualification><fac:userGroup>women</fac:userGroup></fac:userQualification>",
    "family": "<fac:userQualification><fac:userGroup>families</fac:userGroup>"
    "</fac:userQualification>",
    "ev_charging": "<fac:vehicleCharacteristics><com:fuelType>battery</com:fuelType>"
    "</fac:vehicleCharacteristics>",
    "car_sharing": "<fac:withMembership>true</fac:withMembership>",
    "motorcycle": "<fac:vehicleCharacteristics><com:vehicleType>motorcycle</com:vehicleType>"
    "</fac:vehicleCharacteristics>",
    "bus": "<fac:vehicleCharacteristics><com:vehicleType>bus</com:vehicleType>"
    "</fac:vehicleCharacteristics>",
    "truck": "<fac:vehicleCharacteristics><com:vehicleType>lorry</com:vehicleType>"
    "</fac:vehicleCharacteristics>",
}


def _text(value: str) -> str:
    return escape(value)


def multilingual(tag: str, value: str, lang: str = "en") -> str:
    """Return a DATEX II multilingual string element `tag` holding `value` (escaped)."""
    return (
        f"<{tag}><com:values><com:value lang={quoteattr(lang)}>{_text(value)}</com:value>"
        f"</com:values></{tag}>"
    )


def payload_head(
    xsi_type: str,
    namespaces: str,
    profile: str,
    description: str,
    now: datetime,
    country: str,
    publisher: str,
) -> str:
    """Return the XML declaration, the opening `d2:payload` and the publication's common part.

    Args:
        xsi_type: the publication's class, e.g. `prk:ParkingStatusPublication`.
        namespaces: the `xmlns` declarations the document uses.
        profile: the profile's name (version 1).
        description: the feed's description, in words.
        country: the publisher's ISO 3166 country (`ZZ` when unset).
    """
    code = (country or "ZZ").upper()[:2]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<d2:payload {namespaces} xsi:type="{xsi_type}" lang="en" modelBaseVersion="3" '
        f'profileName={quoteattr(profile)} profileVersion="1">'
        + multilingual("com:feedDescription", description)
        + f"<com:publicationTime>{iso(now)}</com:publicationTime>"
        f"<com:publicationCreator><com:country>{_text(code)}</com:country>"
        f"<com:nationalIdentifier>{_text(publisher or 'streetsense')}</com:nationalIdentifier>"
        "</com:publicationCreator>"
    )


def _head(kind: str, now: datetime, country: str, publisher: str) -> str:
    description = f"Parking {kind} of {publisher} (DATEX II v{VERSION})"
    return payload_head(f"prk:{kind}", NAMESPACES, PROFILE, description, now, country, publisher)


_HEADER: Final = (
    "<prk:headerInformation><com:confidentiality>noRestriction</com:confidentiality>"
    "<com:informationStatus>real</com:informationStatus></prk:headerInformation>"
)


def table_document(
    lots: Sequence[LotView],
    version: str,
    now: datetime,
    *,
    country: str,
    publisher: str,
    timezone: str,
) -> bytes:
    """Return the ParkingTablePublication of every lot (location, capacity per category, hours).

    Args:
        version: the registry version the table was read from (the status refers to it).
    """
    parts = [_head("ParkingTablePublication", now, country, publisher), _HEADER]
    parts.append(
        f'<prk:parkingTable id="{TABLE_ID}" version={quoteattr(version)}>'
        f"<prk:versionTime>{iso(now)}</prk:versionTime>"
    )
    for lot in lots:
        parts.append(_place(lot, now, timezone))
        parts.extend(_area(lot, category) for category in _dedicated(lot.categories))
    parts.append("</prk:parkingTable></d2:payload>\n")
    return "".join(parts).encode()


def _dedicated(categories: Iterable[CategoryView]) -> list[CategoryView]:
    return [c for c in categories if c.category != "general"]


def _place(lot: LotView, now: datetime, timezone: str) -> str:
    facts = lot.facts
    out = [
        f'<prk:hierarchyElementGeneral xsi:type="prk:Place" id={quoteattr(lot.id)} version="1">',
        multilingual("fac:name", lot.name),
    ]
    if facts.get("fee"):
        out.append(multilingual("fac:description", f"Fees: {facts['fee']}"))
    if facts.get("tariff_url"):
        out.append(
            "<fac:informationWebsite><com:urlLinkAddress>"
            f"{_text(facts['tariff_url'])}</com:urlLinkAddress></fac:informationWebsite>"
        )
    out.append(_hours(lot, now, timezone))
    out.append(
        '<fac:locationReference xsi:type="loc:PointLocation"><loc:pointByCoordinates>'
        f"<loc:pointCoordinates><loc:latitude>{lot.lat}</loc:latitude>"
        f"<loc:longitude>{lot.lon}</loc:longitude></loc:pointCoordinates>"
        "</loc:pointByCoordinates></fac:locationReference>"
    )
    if facts.get("operator"):
        out.append(_operator(lot))
    if facts.get("max_height_m") is not None:
        out.append(
            f"<fac:dimension><fac:height>{facts['max_height_m']}</fac:height></fac:dimension>"
        )
    out.append("<prk:layer>0</prk:layer><prk:type>place</prk:type>")
    out.extend(
        f'<prk:childId id={quoteattr(f"{lot.id}.{c.category}")} version="1" '
        'targetClass="fac:FacilityObject"/>'
        for c in _dedicated(lot.categories)
    )
    out.append(_supply(lot.capacity))
    out.append(
        "<prk:commonComponents><prk:characteristics>"
        f"<prk:structureType>{_STRUCTURE[lot.kind]}</prk:structureType>"
        f"<prk:openToPublic>true</prk:openToPublic><prk:spacesTotal>{lot.capacity}"
        "</prk:spacesTotal></prk:characteristics>"
    )
    if facts.get("park_and_ride"):
        out.append(
            '<prk:operatingPattern xsi:type="prk:UsageScenario" operatingPatternIndex="1">'
            "<prk:type>parkAndRide</prk:type></prk:operatingPattern>"
        )
    out.append("</prk:commonComponents></prk:hierarchyElementGeneral>")
    return "".join(out)


def _supply(quantity: int) -> str:
    return (
        f"<prk:supply><prk:quantity>{quantity}</prk:quantity>"
        "<prk:viewType>spaceView</prk:viewType></prk:supply>"
    )


def _operator(lot: LotView) -> str:
    facts = lot.facts
    contact = "".join(
        f"<fac:{tag}>{_text(facts[key])}</fac:{tag}>"
        for key, tag in (("phone", "telephoneNumber"), ("email", "eMail"))
        if facts.get(key)
    )
    unit = (
        f"<fac:organisationUnit><fac:contactInformation>{contact}</fac:contactInformation>"
        "</fac:organisationUnit>"
        if contact
        else "<fac:organisationUnit/>"
    )
    return (
        '<fac:operator xsi:type="fac:OrganisationSpecification" '
        f'id={quoteattr(f"{lot.id}.operator")} version="1">'
        + multilingual("fac:name", facts["operator"])
        + f"{unit}</fac:operator>"
    )


def _hours(lot: LotView, now: datetime, timezone: str) -> str:
    """Return the coming week's opening hours, one valid period per time span and its days."""
    spans: dict[tuple[str, str], list[int]] = {}
    for period in week_schedule(lot.opening_hours, now, timezone):
        spans.setdefault((period.opens, period.closes), []).append(period.weekday)
    periods = "".join(
        "<com:validPeriod><com:recurringTimePeriodOfDay>"
        f"<com:startTimeOfPeriod>{opens}</com:startTimeOfPeriod>"
        f"<com:endTimeOfPeriod>{'23:59:59' if closes == '24:00:00' else closes}"
        "</com:endTimeOfPeriod></com:recurringTimePeriodOfDay><com:recurringDayWeekMonthPeriod>"
        + "".join(f"<com:applicableDay>{_DAYS[d]}</com:applicableDay>" for d in sorted(days))
        + "</com:recurringDayWeekMonthPeriod></com:validPeriod>"
        for (opens, closes), days in spans.items()
    )
    label = lot.opening_hours or "24/7"
    return (
        '<fac:operatingHours xsi:type="fac:OperatingHoursSpecification" '
        f'id={quoteattr(f"{lot.id}.hours")} version="1">'
        f"<fac:label>{_text(label)}</fac:label>"
        f"<fac:overallPeriod><com:overallStartTime>{iso(now)}</com:overallStartTime>{periods}"
        "</fac:overallPeriod></fac:operatingHours>"
    )


def _area(lot: LotView, category: CategoryView) -> str:
    area_id = f"{lot.id}.{category.category}"
    return (
        f'<prk:hierarchyElementGeneral xsi:type="prk:SpecificArea" id={quoteattr(area_id)} '
        'version="1">'
        + multilingual("fac:name", f"{lot.name}: {category.category.replace('_', ' ')} spaces")
        + "<prk:layer>1</prk:layer><prk:type>identifiedArea</prk:type>"
        f'<prk:parentId id={quoteattr(lot.id)} version="1" targetClass="fac:FacilityObject"/>'
        + _supply(category.capacity)
        + "<prk:additionalCharacteristics><prk:assignment><prk:exclusivelyAssignedFor>"
        f"<fac:qualification>{_QUALIFICATION[category.category]}</fac:qualification>"
        "</prk:exclusivelyAssignedFor></prk:assignment></prk:additionalCharacteristics>"
        "</prk:hierarchyElementGeneral>"
    )


def status_document(
    lots: Sequence[LotView], version: str, now: datetime, *, country: str, publisher: str
) -> bytes:
    """Return the ParkingStatusPublication: opening status, occupancy and free spaces per lot
    and category, with a fault for stale lots. A closed lot is `closed`, never `full`."""
    parts = [
        _head("ParkingStatusPublication", now, country, publisher),
        f'<prk:parkingTableReference id="{TABLE_ID}" version={quoteattr(version)} '
        'targetClass="prk:ParkingTable"/>',
        _HEADER,
    ]
    for lot in lots:
        parts.append(_lot_status(lot))
        parts.extend(_area_status(lot, c) for c in _dedicated(lot.categories))
    parts.append("</d2:payload>\n")
    return "".join(parts).encode()


def _lot_status(lot: LotView) -> str:
    out = [
        '<prk:parkingStatusInformation xsi:type="prk:PlaceStatus">',
        _reference(lot.id),
    ]
    if lot.observed_at is not None:
        out.append(f"<fac:lastUpdated>{iso(lot.observed_at)}</fac:lastUpdated>")
    out.append(f"<fac:openingStatus>{_OPENING[lot.status]}</fac:openingStatus>")
    out.append(
        "<fac:regularOperatingHoursInForce>"
        f"{'false' if lot.status_source == 'operator' else 'true'}"
        "</fac:regularOperatingHoursInForce>"
    )
    if lot.status_reason:
        out.append(multilingual("fac:statusDescription", lot.status_reason))
    out.extend(f"<prk:parkingFault>{fault}</prk:parkingFault>" for fault in _faults(lot))
    out.append(_occupancy(lot.occupied, lot.available, lot.capacity, lot.closed, lot.trend))
    place = _place_status(lot)
    if place:
        out.append(f"<prk:status>{place}</prk:status>")
    out.append("</prk:parkingStatusInformation>")
    return "".join(out)


def _reference(facility: str) -> str:
    return f'<fac:reference id={quoteattr(facility)} version="1" targetClass="fac:FacilityObject"/>'


def _faults(lot: LotView) -> list[str]:
    faults = []
    if lot.occupied is None:
        faults.append("noParkingInformationAvailable")
    elif lot.stale:
        faults.append("communicationsFailure")
    if lot.checks:
        faults.append("erroneousOccupancyInformation")
    return faults


def _place_status(lot: LotView) -> str | None:
    """Return how full an open lot is; nothing for a closed one (closed is not full)."""
    if lot.closed:
        return None
    if lot.available is None:
        return "unknown"
    if lot.available == 0:
        return "full"
    return "almostFull" if (lot.occupancy or 0.0) >= _ALMOST_FULL else "spacesAvailable"


def _occupancy(
    occupied: int | None, available: int | None, capacity: int, closed: bool, trend: Trend | None
) -> str:
    if occupied is None and not closed:
        return ""
    out = ["<prk:occupancy>"]
    if available is not None:
        out.append(f"<prk:numberOfVacantSpaces>{available}</prk:numberOfVacantSpaces>")
    if occupied is not None:
        out.append(f"<prk:numberOfOccupiedSpaces>{occupied}</prk:numberOfOccupiedSpaces>")
        out.append(f"<prk:occupancy>{round(100 * min(occupied, capacity) / capacity, 2)}")
        out.append("</prk:occupancy>")
    if trend is not None:
        out.append(f"<prk:occupancyTrend>{_TREND[trend]}</prk:occupancyTrend>")
    if closed:
        out.append("<prk:parkingNotAllowed>true</prk:parkingNotAllowed>")
    out.append("</prk:occupancy>")
    return "".join(out)


def _area_status(lot: LotView, category: CategoryView) -> str:
    out = ["<prk:parkingStatusInformation>", _reference(f"{lot.id}.{category.category}")]
    out.append(f"<fac:openingStatus>{_OPENING[lot.status]}</fac:openingStatus>")
    if category.occupied is None:
        out.append("<prk:parkingFault>noParkingInformationAvailable</prk:parkingFault>")
    out.append(_occupancy(category.occupied, category.available, category.capacity,
                          lot.closed, None))  # fmt: skip
    out.append("</prk:parkingStatusInformation>")
    return "".join(out)
