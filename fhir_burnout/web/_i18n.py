"""Messages in Dutch (default) and English, and choosing the person's language."""

from __future__ import annotations

from collections.abc import Iterable

LANGUAGES = ("nl", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "app_name": {"nl": "Herstellen van burn-out", "en": "Recovering from burn-out"},
    "welcome_patient": {"nl": "Welkom, {name}.", "en": "Welcome, {name}."},
    "welcome_practitioner": {"nl": "Welkom, {name}.", "en": "Welcome, {name}."},
    "you_are_practitioner": {
        "nl": "Je bent ingelogd als behandelaar.",
        "en": "You are signed in as a care professional.",
    },
    "you_are_patient": {
        "nl": "Je bent ingelogd met je eigen gegevens.",
        "en": "You are signed in with your own details.",
    },
    "banner_patient": {"nl": "Cliënt", "en": "Client"},
    "banner_born": {"nl": "geboren", "en": "born"},
    "banner_identifier": {"nl": "nummer", "en": "number"},
    "not_granted": {
        "nl": "Het EHR gaf niet alle toegang. Dit werkt daardoor niet:",
        "en": "The EHR did not give all access. Because of that, this will not work:",
    },
    "now_in_phase": {"nl": "Je zit nu in {phase}.", "en": "You are now in {phase}."},
    "opened_by_practitioner": {
        "nl": "Je behandelaar heeft deze fase voor je opengezet.",
        "en": "Your care professional opened this phase for you.",
    },
    "programme_paused": {
        "nl": "Je programma staat even stil: je behandelaar heeft het gepauzeerd. Alles wat je "
        "al deed, blijft bewaard. Als het verder gaat, zie je hier weer wat je kunt doen.",
        "en": "Your programme is on pause: your care professional paused it. Everything you "
        "did so far is kept. When it goes on, you will see here again what you can do.",
    },
    "invite_title": {"nl": "Je uitnodiging", "en": "Your invitation"},
    "invite_intro": {
        "nl": "Heb je van de praktijk een code gekregen? Vul die hier in. Daarna log je in "
        "met je eigen gegevens, zoals bij de praktijk.",
        "en": "Did the practice give you a code? Fill it in here. Then you sign in with your "
        "own details, as at the practice.",
    },
    "invite_code_label": {
        "nl": "Code (bijvoorbeeld AB12-CD34)",
        "en": "Code (for example AB12-CD34)",
    },
    "invite_continue": {"nl": "Verder", "en": "Continue"},
    "invite_code_missing": {
        "nl": "Vul de code in die je kreeg.",
        "en": "Fill in the code you were given.",
    },
    "invite_accepted": {
        "nl": "Welkom! Je uitnodiging is gelukt. Hieronder zie je waar je kunt beginnen.",
        "en": "Welcome! Your invitation worked. Below you can see where to start.",
    },
    "invite_not_yours": {
        "nl": "Deze code kennen we niet, of hij hoort bij iemand anders. Kijk de code nog eens "
        "na, of vraag de praktijk om een nieuwe.",
        "en": "We do not know this code, or it belongs to someone else. Check the code again, "
        "or ask the practice for a new one.",
    },
    "notes_heading": {
        "nl": "Berichten van je behandelaar",
        "en": "Messages from your care professional",
    },
    "modules_done": {
        "nl": "{done} van de {total} modules gedaan.",
        "en": "{done} of {total} modules done.",
    },
    "next_module": {"nl": "Hierna:", "en": "Next:"},
    "due_now": {"nl": "Klaar om in te vullen", "en": "Ready to fill in"},
    "phase_open": {"nl": "open", "en": "open"},
    "phase_locked": {"nl": "nog dicht", "en": "not open yet"},
    "phase_done": {"nl": "klaar", "en": "done"},
    "not_enrolled": {
        "nl": "Je bent nog niet aangemeld voor het programma. Je behandelaar kan dat voor je doen.",
        "en": "You are not enrolled in the programme yet. Your care professional can do that for you.",
    },
    # --- the care professional's pages (web/_practitioner_pages.py) ---
    "pract_title": {"nl": "Overzicht van de cliënt", "en": "Client overview"},
    "pract_link": {"nl": "Overzicht van deze cliënt", "en": "Overview of this client"},
    "practice_link": {"nl": "Praktijkoverzicht", "en": "Practice overview"},
    "pract_nav": {"nl": "Behandelaar", "en": "Care professional"},
    "pract_back_home": {"nl": "Terug naar de startpagina", "en": "Back to the first page"},
    "pract_alerts": {"nl": "Veiligheidssignalen", "en": "Safety signals"},
    "pract_alert_text": {
        "nl": "Veiligheidssignaal in {title} ({date}): neem vandaag contact op met de cliënt.",
        "en": "Safety signal in {title} ({date}): contact the client today.",
    },
    "pract_alert_close": {"nl": "Contact gehad, afsluiten", "en": "Contact taken, close"},
    "pract_requests": {"nl": "Gevraagd van jou", "en": "Asked of you"},
    "pract_request_text": {
        "nl": "De vorige fase is klaar ({date}): {phase} kan open.",
        "en": "The previous phase is done ({date}): {phase} can open.",
    },
    "pract_programmes": {"nl": "Programma", "en": "Programme"},
    "enrolment_active": {"nl": "loopt", "en": "running"},
    "enrolment_on-hold": {"nl": "gepauzeerd", "en": "paused"},
    "enrolment_completed": {"nl": "afgerond", "en": "finished"},
    "enrolment_revoked": {"nl": "gestopt", "en": "stopped"},
    "pract_since": {"nl": "Sinds {date}.", "en": "Since {date}."},
    "pract_follows": {
        "nl": "Overgestapt vanuit een ander traject; wat al gedaan was, telt mee.",
        "en": "Switched from another track; what was done already counts.",
    },
    "pract_followed_by": {
        "nl": "Voortgezet in een ander traject.",
        "en": "Carried on in another track.",
    },
    "pract_invitation": {"nl": "Uitnodigingscode: {code}.", "en": "Invitation code: {code}."},
    "pract_invitation_accepted": {"nl": "(gebruikt)", "en": "(used)"},
    "pract_opened_on": {"nl": "opengezet op {date}", "en": "opened on {date}"},
    "pract_modules_done": {
        "nl": "{done} van de {total} modules gedaan.",
        "en": "{done} of {total} modules done.",
    },
    "pract_unlock": {"nl": "Openzetten: {phase}", "en": "Open: {phase}"},
    "pract_pause": {"nl": "Pauzeren", "en": "Pause"},
    "pract_resume": {"nl": "Hervatten", "en": "Resume"},
    "pract_switch": {"nl": "Overstappen naar: {track}", "en": "Switch to: {track}"},
    "pract_finish": {"nl": "Afronden", "en": "Finish"},
    "pract_stop": {"nl": "Stoppen", "en": "Stop"},
    "pract_note_label": {
        "nl": "Bericht voor de cliënt (zichtbaar op diens startpagina)",
        "en": "Message for the client (shown on their first page)",
    },
    "pract_note_send": {"nl": "Bericht versturen", "en": "Send message"},
    "pract_notes_sent": {"nl": "Verstuurde berichten", "en": "Messages sent"},
    "pract_not_enrolled": {
        "nl": "Deze cliënt doet nog niet mee aan het programma.",
        "en": "This client is not in the programme yet.",
    },
    "pract_enrol_label": {"nl": "Aanmelden voor", "en": "Enrol in"},
    "pract_enrol": {"nl": "Aanmelden", "en": "Enrol"},
    "pract_scores": {"nl": "Scores door de tijd", "en": "Scores over time"},
    "pract_chart_desc": {
        "nl": "De scores door de tijd; de tabel eronder geeft dezelfde cijfers.",
        "en": "The scores over time; the table below gives the same figures.",
    },
    "pract_band": {"nl": "Afkapwaarde (band)", "en": "Cut-off band"},
    "rci_improved": {"nl": "Betrouwbaar verbeterd.", "en": "Reliably improved."},
    "rci_no-change": {"nl": "Geen betrouwbare verandering.", "en": "No reliable change."},
    "rci_worse": {"nl": "Betrouwbaar verslechterd.", "en": "Reliably worse."},
    "rci_detail": {
        "nl": "Van {first} naar {last}; pas een verschil van {threshold} punten of meer is "
        "betrouwbaar (Jacobson-Truax).",
        "en": "From {first} to {last}; only a difference of {threshold} points or more is "
        "reliable (Jacobson-Truax).",
    },
    "rci_unknown": {
        "nl": "Voor deze score is geen gepubliceerde betrouwbaarheid: geen oordeel over "
        "betrouwbare verandering.",
        "en": "This score has no published reliability: no verdict on reliable change.",
    },
    "pract_no_scores": {"nl": "Nog geen scores.", "en": "No scores yet."},
    "pract_answers": {"nl": "Antwoorden van de cliënt", "en": "The client's answers"},
    "pract_no_answers": {"nl": "Nog geen antwoorden.", "en": "No answers yet."},
    "practice_title": {"nl": "Praktijkoverzicht", "en": "Practice overview"},
    "practice_alert": {
        "nl": "Cliënt {patient}: veiligheidssignaal sinds {date} (open: {n})",
        "en": "Client {patient}: safety signal since {date} (open: {n})",
    },
    "practice_stuck": {"nl": "Vastgelopen", "en": "Stuck"},
    "practice_stuck_text": {
        "nl": "Cliënt {patient}: al twee weken niets afgerond (laatste activiteit {date}).",
        "en": "Client {patient}: nothing finished for two weeks (last activity {date}).",
    },
    "practice_enrolled": {"nl": "Wie doet mee", "en": "Who is enrolled"},
    "practice_client": {"nl": "Cliënt", "en": "Client"},
    "practice_last": {"nl": "Laatste activiteit", "en": "Last activity"},
    "practice_state_alert": {"nl": "veiligheidssignaal", "en": "safety signal"},
    "practice_state_stuck": {"nl": "vastgelopen", "en": "stuck"},
    "practice_nobody": {"nl": "Nog niemand doet mee.", "en": "Nobody is enrolled yet."},
    "practice_dead": {"nl": "Niet afgeleverd bij het EHR", "en": "Not delivered to the EHR"},
    "practice_dead_intro": {
        "nl": "Het EHR weigerde deze gegevens. Ze zijn bewaard; latere gegevens van dezelfde "
        "cliënt wachten tot dit is opgelost (fhir-burnout sync retry).",
        "en": "The EHR refused these records. They are kept; later records of the same "
        "client wait until this is resolved (fhir-burnout sync retry).",
    },
    "practice_dead_item": {
        "nl": "Cliënt {patient}, {date}, HTTP {status}",
        "en": "Client {patient}, {date}, HTTP {status}",
    },
    "practice_dead_message": {"nl": "Melding van het EHR:", "en": "The EHR's message:"},
    "practice_dead_none": {
        "nl": "Alles is afgeleverd of onderweg.",
        "en": "Everything is delivered or on its way.",
    },
    "notice_enrolled": {"nl": "Aangemeld voor {track}.", "en": "Enrolled in {track}."},
    "notice_pause": {"nl": "Het programma is gepauzeerd.", "en": "The programme is paused."},
    "notice_resume": {"nl": "Het programma loopt weer.", "en": "The programme is running again."},
    "notice_stop": {"nl": "Het programma is gestopt.", "en": "The programme is stopped."},
    "notice_finish": {"nl": "Het programma is afgerond.", "en": "The programme is finished."},
    "notice_finish_after_care": {
        "nl": "Het programma is afgerond. Je kunt de cliënt nu nazorg aanbieden: kies hieronder "
        "het traject Na de behandeling.",
        "en": "The programme is finished. You can now offer the client after-care: choose the "
        "track After treatment below.",
    },
    "notice_unlock": {"nl": "De fase staat open.", "en": "The phase is open."},
    "notice_switch": {
        "nl": "Overgestapt; wat al gedaan was, is meegenomen.",
        "en": "Switched; what was done already came along.",
    },
    "notice_note": {"nl": "Het bericht is verstuurd.", "en": "The message is sent."},
    "notice_alert_closed": {
        "nl": "Het veiligheidssignaal is afgesloten.",
        "en": "The safety signal is closed.",
    },
    "error_practitioners_only": {
        "nl": "Deze pagina is alleen voor behandelaars.",
        "en": "This page is for care professionals only.",
    },
    "error_no_patient": {
        "nl": "Open het programma vanuit het dossier van een cliënt.",
        "en": "Please open the programme from a client's record.",
    },
    "error_action_not_found": {
        "nl": "Dit hoort niet (meer) bij het programma van deze cliënt. Er is niets veranderd.",
        "en": "This is not (or no longer) part of this client's programme. Nothing was changed.",
    },
    "error_action_state": {
        "nl": "Dit kan niet in de huidige stand van het programma. Er is niets veranderd.",
        "en": "This is not possible in the programme's current state. Nothing was changed.",
    },
    "error_action_changed": {
        "nl": "Iemand anders veranderde dit net. Er is niets veranderd; kijk en probeer opnieuw.",
        "en": "Someone else just changed this. Nothing was changed; look and try again.",
    },
    "error_not_this_practice": {
        "nl": "Het praktijkoverzicht is alleen voor behandelaars van deze praktijk.",
        "en": "The practice overview is only for care professionals of this practice.",
    },
    "error_practice_unchecked": {
        "nl": "Het EHR antwoordt nu niet, dus we kunnen niet nagaan of je bij deze praktijk "
        "werkt. Probeer het later nog eens.",
        "en": "The EHR does not answer now, so we cannot check that you work at this "
        "practice. Please try again later.",
    },
    # --- end of the care professional's pages ---
    "crisis_title": {"nl": "Direct hulp nodig?", "en": "Need help now?"},
    "crisis_113": {
        "nl": "Denk je aan zelfdoding? Bel 113 Zelfmoordpreventie: 0800-0113 (gratis, dag en nacht) of chat via 113.nl.",
        "en": "Thinking about suicide? Call 113 Suicide Prevention: 0800-0113 (free, day and night) or chat at 113.nl.",
    },
    "crisis_gp": {
        "nl": "Bel je huisarts, of 's avonds en in het weekend de huisartsenpost.",
        "en": "Call your GP, or in the evening and at weekends the out-of-hours GP service (huisartsenpost).",
    },
    "crisis_112": {
        "nl": "Is er direct gevaar? Bel 112.",
        "en": "In immediate danger? Call 112.",
    },
    "error_title": {"nl": "Dit lukte niet", "en": "This did not work"},
    "error_not_found": {
        "nl": "Deze pagina bestaat niet, of hoort niet bij jouw programma.",
        "en": "This page does not exist, or is not part of your programme.",
    },
    "error_form_expired": {
        "nl": "Het formulier was verlopen. Er is niets veranderd; probeer het nog een keer.",
        "en": "The form had expired. Nothing was changed; please try again.",
    },
    "error_not_now": {
        "nl": "Dit kan nu niet. Er is niets veranderd.",
        "en": "This is not possible now. Nothing was changed.",
    },
    "error_not_now_saved": {
        "nl": "Dit kan nu niet worden ingestuurd. Wat je invulde, is bewaard: je vindt het "
        "terug als je weer verder kunt.",
        "en": "This cannot be sent now. What you filled in has been kept: you will find it "
        "again when you can carry on.",
    },
    "error_too_large": {
        "nl": "Dit was te veel tekst in één keer. Wat je eerder opsloeg, is bewaard; maak het wat korter.",
        "en": "That was too much text at once. What you saved before is kept; please make it shorter.",
    },
    "required": {"nl": "verplicht", "en": "required"},
    "yes": {"nl": "Ja", "en": "Yes"},
    "no": {"nl": "Nee", "en": "No"},
    "send": {"nl": "Versturen", "en": "Send"},
    "entry_number": {"nl": "{group} {n}", "en": "{group} {n}"},
    "add_entry": {"nl": "Nog een toevoegen: {group}", "en": "Add another: {group}"},
    "remove_entry": {"nl": "Weghalen: {group} {n}", "en": "Remove: {group} {n}"},
    "save_for_later": {"nl": "Opslaan, later verder", "en": "Save, continue later"},
    "form_has_problems": {
        "nl": "Er is nog iets niet goed. Je antwoorden zijn bewaard; kijk bij de vragen hieronder.",
        "en": "Something is not right yet. Your answers are saved; see the questions below.",
    },
    "safety_title": {"nl": "Fijn dat je het laat weten", "en": "Thank you for telling us"},
    "safety_practitioner": {  # issue 16: built from the practice's promise (config [safety])
        "nl": "{who} leest je antwoord {promise} en neemt daarna contact met je op. De app "
        "wordt niet dag en nacht bekeken. Gaat het nu niet? Wacht dan niet, maar bel 113, je "
        "huisarts of de huisartsenpost, of 112.",
        "en": "{who} reads your answer {promise} and will then contact you. The app is not "
        "watched day and night. Are things bad right now? Do not wait: call 113, your GP or "
        "the out-of-hours GP service, or 112.",
    },
    "reflection_intro": {
        "nl": "Na de oefening: hoe was het? Je mag alles overslaan. Wat je invult, ziet je behandelaar ook.",
        "en": "After the exercise: how was it? You may skip anything. Your care professional also sees what you fill in.",
    },
    "reflection_keep": {"nl": "Bewaren", "en": "Keep"},
    "reflection_saved": {
        "nl": "Dank je. Je antwoorden na de oefening zijn bewaard.",
        "en": "Thank you. Your answers after the exercise are kept.",
    },
    "reflection_has_problems": {
        "nl": "Er is nog iets niet goed; kijk bij de vragen hieronder. Er is nog niets bewaard.",
        "en": "Something is not right yet; see the questions below. Nothing has been kept yet.",
    },
    "energy_title": {"nl": "Je energiedagboek", "en": "Your energy diary"},
    "energy_intro": {
        "nl": "Zo ging je energie op de dagen die je invulde. Kijk of je pieken en dalen ziet, en wat je energie geeft of kost. Er is geen goed of fout.",
        "en": "This is how your energy went on the days you filled in. See if you notice peaks and dips, and what gives or costs you energy. There is no right or wrong.",
    },
    "energy_chart_desc": {
        "nl": "Je energie per dag, van 0 tot 10; de tabel hieronder geeft dezelfde cijfers.",
        "en": "Your energy per day, from 0 to 10; the table below gives the same figures.",
    },
    "energy_table": {"nl": "Energie per dag", "en": "Energy per day"},
    "energy_day": {"nl": "Energie van de dag (0-10)", "en": "Energy that day (0-10)"},
    "energy_balance": {
        "nl": "Opgeteld: gaf (+) of kostte (-)",
        "en": "Added up: gave (+) or cost (-)",
    },
    "energy_parts": {"nl": "Dagdelen", "en": "Parts of the day"},
    "energy_gives": {"nl": "Dit gaf je energie", "en": "This gave you energy"},
    "energy_costs": {"nl": "Dit kostte je energie", "en": "This cost you energy"},
    "energy_times": {"nl": "{n} keer", "en": "{n} times"},
    "energy_once": {"nl": "1 keer", "en": "once"},
    "progress_title": {"nl": "Hoe het gaat", "en": "How you are doing"},
    "progress_link": {"nl": "Bekijk hoe het gaat", "en": "See how you are doing"},
    "chart_desc": {
        "nl": "Je scores door de tijd; de tabel hieronder geeft dezelfde cijfers.",
        "en": "Your scores over time; the table below gives the same figures.",
    },
    "date": {"nl": "Datum", "en": "Date"},
    "score": {"nl": "Score", "en": "Score"},
    "meaning": {"nl": "Wat het betekent", "en": "What it means"},
    "no_scores_yet": {
        "nl": "Zodra je een vragenlijst hebt ingevuld, zie je hier je scores.",
        "en": "Once you have filled in a questionnaire, your scores show here.",
    },
    "exercises": {"nl": "Oefeningen stap voor stap", "en": "Exercises step by step"},
    "exercise_n": {"nl": "oefening {n}", "en": "exercise {n}"},
    "back_to_module": {"nl": "Terug naar de module", "en": "Back to the module"},
    "timer_title": {"nl": "Timer", "en": "Timer"},
    "timer_without_js": {
        "nl": "Deze oefening duurt ongeveer {minutes} minuten. Zet een wekker als je wilt.",
        "en": "This exercise takes about {minutes} minutes. Set an alarm if you like.",
    },
    "timer_start": {"nl": "Start de timer", "en": "Start the timer"},
    "timer_pause": {"nl": "Pauze", "en": "Pause"},
    "timer_resume": {"nl": "Verder", "en": "Continue"},
    "timer_again": {"nl": "Opnieuw", "en": "Again"},
    "timer_paused": {"nl": "De timer staat op pauze.", "en": "The timer is paused."},
    "timer_started": {"nl": "De timer loopt.", "en": "The timer is running."},
    "timer_done": {
        "nl": "De tijd is om. Neem rustig de tijd om terug te komen.",
        "en": "Time is up. Take your time to come back.",
    },
    "timer_minutes": {"nl": "Nog {n} minuten.", "en": "{n} minutes left."},
    "back_home": {"nl": "Terug naar je overzicht", "en": "Back to your overview"},
    "about_minutes": {"nl": "Ongeveer {minutes} minuten.", "en": "About {minutes} minutes."},
    "mark_done": {"nl": "Klaar met deze module", "en": "I have finished this module"},
    "module_is_done": {"nl": "Deze module heb je gedaan.", "en": "You have finished this module."},
    "error_untrusted": {
        "nl": "Dit EHR is niet gekoppeld aan het programma. Vraag je praktijk om hulp.",
        "en": "This EHR is not connected to the programme. Please ask your practice for help.",
    },
    "error_launch": {
        "nl": "Het openen van het programma is niet gelukt. Open het programma opnieuw vanuit je EHR of patiëntenportaal.",
        "en": "Opening the programme did not work. Please open it again from your EHR or patient portal.",
    },
    "error_expired_saved": {
        "nl": "Je sessie is verlopen. Wat je net invulde, is bewaard. Open het programma opnieuw vanuit je EHR of patiëntenportaal en ga verder waar je was.",
        "en": "Your session has ended. What you just filled in has been kept. Please open the programme again from your EHR or patient portal and carry on where you left off.",
    },
    "error_expired": {
        "nl": "Je sessie is verlopen. Open het programma opnieuw vanuit je EHR of patiëntenportaal. Wat je al had ingevuld, is bewaard.",
        "en": "Your session has ended. Please open the programme again from your EHR or patient portal. What you already filled in has been kept.",
    },
    "error_signed_out": {
        "nl": "Je bent niet ingelogd. Open het programma vanuit je EHR of patiëntenportaal.",
        "en": "You are not signed in. Please open the programme from your EHR or patient portal.",
    },
    # --- K4: the Koppeltaal launch -------------------------------------------------------
    "kt_reference": {
        "nl": "Referentie voor de helpdesk: {reference}",
        "en": "Reference for the helpdesk: {reference}",
    },
    "kt_error_untrusted": {
        "nl": "Dit portaal is niet via Koppeltaal aan het programma gekoppeld. Vraag je praktijk om hulp.",
        "en": "This portal is not connected to the programme through Koppeltaal. Please ask your practice for help.",
    },
    "kt_error_launch": {
        "nl": "Het openen van het programma is niet gelukt. Open de taak opnieuw vanuit je portaal of EPD.",
        "en": "Opening the programme did not work. Please open the task again from your portal or EHR.",
    },
    "kt_error_link": {
        "nl": "Deze link om het programma te openen is verlopen of al gebruikt. Open de taak opnieuw vanuit je portaal of EPD.",
        "en": "This link to open the programme has expired or was already used. Please open the task again from your portal or EHR.",
    },
    "kt_error_start_again": {
        "nl": "Het inloggen is niet afgerond of duurde te lang. Open de taak opnieuw vanuit je portaal of EPD.",
        "en": "Signing in was not finished or took too long. Please open the task again from your portal or EHR.",
    },
    "kt_error_not_yours": {
        "nl": "Deze taak hoort bij iemand anders. Open je eigen taak vanuit je portaal of EPD, of vraag je praktijk om hulp.",
        "en": "This task belongs to someone else. Please open your own task from your portal or EHR, or ask your practice for help.",
    },
    "kt_error_foreign": {
        "nl": "Deze taak is niet voor dit programma bedoeld. Vraag je praktijk om hulp.",
        "en": "This task is not meant for this programme. Please ask your practice for help.",
    },
    "kt_error_task_closed": {
        "nl": "Deze taak is afgesloten en kan niet meer worden geopend. Vraag je behandelaar om een nieuwe taak.",
        "en": "This task has been closed and can no longer be opened. Please ask your care professional for a new task.",
    },
    "kt_error_not_found": {
        "nl": "Deze taak bestaat niet meer. Vraag je praktijk om hulp.",
        "en": "This task no longer exists. Please ask your practice for help.",
    },
    "kt_error_unavailable": {
        "nl": "Het programma kan het Koppeltaal-netwerk nu niet bereiken. Probeer het over een paar minuten opnieuw.",
        "en": "The programme cannot reach the Koppeltaal network right now. Please try again in a few minutes.",
    },
    # --- K8: the results a Koppeltaal DocumentReference links to ----------------------------
    "ktr_title": {
        "nl": "Resultaten burn-outprogramma",
        "en": "Results of the burnout programme",
    },
    "ktr_about": {
        "nl": "Cliënt {patient}; overzicht van {date}.",
        "en": "Client {patient}; summary of {date}.",
    },
    "ktr_portal_first": {
        "nl": "Deze resultaten zijn alleen voor behandelaars. Open eerst de module vanuit het portaal of EPD en open daarna deze link opnieuw.",
        "en": "These results are for care professionals only. Please open the module from the portal or EHR first, then open this link again.",
    },
    "ktr_not_found": {
        "nl": "Deze resultaten bestaan niet (meer) bij dit programma.",
        "en": "These results do not exist (any more) in this programme.",
    },
    # --- end of K8 ---
    # --- issue 16: one context per launch, and who wrote it ---
    "error_wrong_client": {
        "nl": "Deze pagina hoort bij een andere cliënt dan de cliënt die nu in dit venster "
        "open is. Er is niets veranderd. Open de cliënt opnieuw vanuit het dossier.",
        "en": "This page belongs to another client than the one open in this window now. "
        "Nothing was changed. Open the client again from the record.",
    },
    "error_module_client_only": {
        "nl": "Alleen de cliënt zelf kan een module afronden. Er is niets veranderd.",
        "en": "Only the client can mark a module as done. Nothing was changed.",
    },
    "module_practitioner_view": {
        "nl": "Je bekijkt deze module als behandelaar. Alleen de cliënt kan hem afronden.",
        "en": "You are viewing this module as a care professional. Only the client can mark "
        "it as done.",
    },
    "together_title": {
        "nl": "Samen met de cliënt invullen.",
        "en": "Filling this in with the client.",
    },
    "together_text": {
        "nl": "Je bent ingelogd als behandelaar. Wat je hier verstuurt, komt in het dossier "
        "met jou als invuller en de cliënt als bron van de antwoorden.",
        "en": "You are signed in as a care professional. What you send here is recorded with "
        "you as the one who entered it and the client as the source of the answers.",
    },
    "entered_by_client": {"nl": "ingevuld door de cliënt", "en": "entered by the client"},
    "entered_by_practitioner": {
        "nl": "ingevuld door {who} samen met de cliënt",
        "en": "entered by {who} with the client",
    },
    # --- endings on purpose and measures that follow the programme (issue 16, items 6 and 8) ---
    "end_stop_title": {"nl": "Programma stoppen: {track}", "en": "Stop the programme: {track}"},
    "end_finish_title": {
        "nl": "Programma afronden: {track}",
        "en": "Finish the programme: {track}",
    },
    "end_back": {"nl": "Terug naar de cliënt", "en": "Back to the client"},
    "end_what_happens": {"nl": "Wat er dan gebeurt", "en": "What happens then"},
    "end_happens_close": {
        "nl": "Open modules, huiswerk en vragenlijsten gaan dicht. De cliënt kan ze niet meer "
        "invullen.",
        "en": "Open modules, homework and questionnaires close. The client can no longer fill "
        "them in.",
    },
    "end_happens_checkins": {
        "nl": "De wekelijkse check-in stopt. De cliënt krijgt geen nieuwe meer.",
        "en": "The weekly check-in stops. The client gets no new ones.",
    },
    "end_happens_ehr_stop": {
        "nl": "Het EHR hoort het: het zorgplan wordt 'gestopt', met de reden die je hieronder "
        "kiest.",
        "en": "The EHR is told: the care plan becomes 'stopped', with the reason you choose "
        "below.",
    },
    "end_happens_ehr_finish": {
        "nl": "Het EHR hoort het: het zorgplan wordt 'afgerond', met de reden die je hieronder "
        "kiest.",
        "en": "The EHR is told: the care plan becomes 'finished', with the reason you choose "
        "below.",
    },
    "end_happens_referrer": {
        "nl": "Is de cliënt naar ons verwezen, dan hoort de verwijzer het ook, met dezelfde reden.",
        "en": "If the client was referred to us, the referrer is told too, with the same reason.",
    },
    "end_happens_kept": {
        "nl": "Wat de cliënt deed en invulde, blijft bewaard. Veiligheidssignalen en je eigen "
        "taken blijven open staan.",
        "en": "What the client did and filled in is kept. Safety signals and your own tasks "
        "stay open.",
    },
    "end_happens_after_care": {
        "nl": "Daarna kun je de cliënt nazorg aanbieden: het traject Na de behandeling.",
        "en": "Then you can offer the client after-care: the track After treatment.",
    },
    "end_no_way_back": {
        "nl": "Dit kun je niet terugdraaien. Wil je alleen even stoppen? Kies dan Pauzeren.",
        "en": "This cannot be undone. Only stopping for a while? Then choose Pause.",
    },
    "end_reason_legend": {"nl": "Reden (verplicht)", "en": "Reason (required)"},
    "end_note_label": {
        "nl": "Toelichting (mag leeg blijven; gaat met de reden mee naar het EHR)",
        "en": "Note (may stay empty; goes to the EHR with the reason)",
    },
    "end_confirm_stop": {"nl": "Ja, stop het programma", "en": "Yes, stop the programme"},
    "end_confirm_finish": {"nl": "Ja, rond het programma af", "en": "Yes, finish the programme"},
    "end_cancel": {"nl": "Nee, niets veranderen", "en": "No, change nothing"},
    "error_end_reason": {
        "nl": "Kies een reden. Er is niets veranderd.",
        "en": "Choose a reason. Nothing was changed.",
    },
    "error_end_unconfirmed": {
        "nl": "Stoppen en afronden gaan alleen met een bevestiging en een reden. Er is niets "
        "veranderd.",
        "en": "Stopping and finishing need a confirmation and a reason. Nothing was changed.",
    },
    "pract_ended_reason": {"nl": "Reden: {reason}.", "en": "Reason: {reason}."},
    "pract_measures": {"nl": "Metingen in dit traject", "en": "Measures in this track"},
    "measure_start": {"nl": "{title}: bij de start", "en": "{title}: at the start"},
    "measure_weekly": {
        "nl": "{title}: elke week, zolang het traject loopt",
        "en": "{title}: every week, while the track runs",
    },
    "measure_weekly_until": {
        "nl": "{title}: elke week, tot en met {date}",
        "en": "{title}: every week, up to and including {date}",
    },
    "measure_phase-end": {
        "nl": "{title}: aan het eind van {phase}",
        "en": "{title}: at the end of {phase}",
    },
    "measure_end": {
        "nl": "{title}: aan het eind van het traject",
        "en": "{title}: at the end of the track",
    },
    "pract_measures_ended": {
        "nl": "De looptijd van dit traject is voorbij: er komen geen check-ins meer. Rond het "
        "traject af, of verleng het.",
        "en": "This track has run its time: no more check-ins. Finish the track, or extend it.",
    },
    "pract_extend": {"nl": "Metingen verlengen", "en": "Extend the measures"},
    "notice_extend": {
        "nl": "De metingen lopen door tot en met {date}.",
        "en": "The measures go on up to and including {date}.",
    },
    # --- end of endings ---
    # --- safety-pages (issue 16, items 5, 9, 10): crisis help within reach, error pages,
    # worrying answers in drafts and failed sends, nothing lost in an outage -----------------
    "help_link": {"nl": "Hulp nodig?", "en": "Need help?"},
    "help_title": {"nl": "Hulp nodig?", "en": "Need help?"},
    "help_intro": {
        "nl": "Gaat het nu niet goed met je? Je hoeft het niet alleen te doen. Bel of chat "
        "vandaag nog met iemand. Dat mag altijd, ook als je twijfelt.",
        "en": "Are you not doing well right now? You do not have to do this alone. Call or "
        "chat with someone today. You may always do so, also when you are not sure.",
    },
    "help_113_question": {"nl": "Denk je aan zelfdoding?", "en": "Thinking about suicide?"},
    "help_113_text": {
        "nl": "Bel of chat met 113 Zelfmoordpreventie. Gratis, dag en nacht.",
        "en": "Call or chat with 113 Suicide Prevention. Free, day and night.",
    },
    "help_call_113": {"nl": "Bel 113: 0800-0113", "en": "Call 113: 0800-0113"},
    "help_chat_113": {"nl": "Chat met 113 op 113.nl", "en": "Chat with 113 at 113.nl"},
    "help_gp_question": {
        "nl": "Gaat het niet goed, maar is het geen noodgeval?",
        "en": "Not doing well, but it is not an emergency?",
    },
    "help_gp": {
        "nl": "Bel je huisarts. 's Avonds, 's nachts en in het weekend bel je de huisartsenpost.",
        "en": "Call your GP. In the evening, at night and at weekends, call the out-of-hours "
        "GP service (huisartsenpost).",
    },
    "help_112_question": {"nl": "Is er direct gevaar?", "en": "In immediate danger?"},
    "help_call_112": {"nl": "Bel 112", "en": "Call 112"},
    "help_not_watched": {
        "nl": "Deze app is geen crisisdienst: niemand kijkt er dag en nacht in mee. Bel daarom "
        "altijd zelf een van deze nummers als het nu niet goed gaat.",
        "en": "This app is not a crisis service: nobody watches it day and night. So always "
        "call one of these numbers yourself when you are not doing well right now.",
    },
    "error_page_not_found": {
        "nl": "Deze pagina bestaat niet. Misschien klopt het adres niet helemaal.",
        "en": "This page does not exist. Perhaps the address is not quite right.",
    },
    "error_page_method": {
        "nl": "Deze pagina kan dit niet doen. Ga terug naar je overzicht en probeer het "
        "daar opnieuw.",
        "en": "This page cannot do this. Go back to your overview and try again from there.",
    },
    "error_page_broken": {
        "nl": "Er ging bij ons iets mis. Dat ligt niet aan jou. Probeer het zo nog eens.",
        "en": "Something went wrong on our side. It is not your fault. Please try again in "
        "a moment.",
    },
    "error_page_other": {
        "nl": "Dit lukte niet. Ga terug naar je overzicht en probeer het opnieuw.",
        "en": "This did not work. Go back to your overview and try again.",
    },
    "safety_not_sent_saved": {
        "nl": "Je antwoorden zijn bewaard, maar nog niet verstuurd. De praktijk ziet ze pas "
        "als je op 'Versturen' drukt. Wacht daar niet mee als het nu niet goed gaat: bel "
        "dan meteen.",
        "en": "Your answers are saved, but not sent yet. The practice only sees them when "
        "you press 'Send'. Do not wait if you are not doing well right now: call at once.",
    },
    "safety_not_sent_invalid": {
        "nl": "Je antwoorden zijn nog niet verstuurd, want er is nog iets niet goed (zie "
        "hieronder). De praktijk ziet ze pas als je ze verstuurt. Wacht daar niet mee als "
        "het nu niet goed gaat: bel dan meteen.",
        "en": "Your answers are not sent yet, because something is not right yet (see "
        "below). The practice only sees them once you send them. Do not wait if you are "
        "not doing well right now: call at once.",
    },
    "safety_not_sent_outage": {
        "nl": "Je antwoorden zijn nog niet opgeslagen en niet verstuurd. De praktijk weet "
        "dit dus nog niet. Wacht niet als het nu niet goed gaat: bel dan meteen.",
        "en": "Your answers are not saved and not sent yet. So the practice does not know "
        "this yet. Do not wait if you are not doing well right now: call at once.",
    },
    "error_not_saved": {
        "nl": "We konden je antwoorden niet opslaan. Dat ligt niet aan jou. Ze staan "
        "hieronder nog ingevuld: probeer het zo nog eens.",
        "en": "We could not save your answers. It is not your fault. They are still filled "
        "in below: please try again in a moment.",
    },
    "unsent_restored": {
        "nl": "We hebben je antwoorden teruggezet die nog niet waren opgeslagen.",
        "en": "We have put back your answers that had not been saved yet.",
    },
    # --- end of safety-pages ---
    # --- referral triage (issue 16 item 7) ---
    "triage_waiting_title": {
        "nl": "Aanmeldingen om te beoordelen ({n})",
        "en": "Referrals to assess ({n})",
    },
    "triage_waiting_intro": {
        "nl": "Deze aanmeldingen wachten op jouw beoordeling. Nog niemand is ingeschreven of "
        "uitgenodigd: past zelfhulp bij deze persoon?",
        "en": "These referrals wait for your assessment. Nobody has been enrolled or invited "
        "yet: does self-help suit this person?",
    },
    "triage_waiting_item": {"nl": "Aanmelding van {patient}", "en": "Referral of {patient}"},
    "triage_received": {"nl": "aangemeld op {date}", "en": "referred on {date}"},
    "triage_urgent": {"nl": "spoed gevraagd", "en": "urgency asked"},
    "triage_waited_today": {"nl": "wacht sinds vandaag", "en": "waiting since today"},
    "triage_waited_day": {"nl": "wacht 1 dag", "en": "waiting 1 day"},
    "triage_waited_days": {"nl": "wacht {n} dagen", "en": "waiting {n} days"},
    "triage_title": {"nl": "Aanmelding beoordelen", "en": "Assess a referral"},
    "triage_back": {"nl": "Terug naar het praktijkoverzicht", "en": "Back to the practice"},
    "triage_state_waiting": {
        "nl": "Aangemeld, nog niet beoordeeld",
        "en": "Referred, not assessed yet",
    },
    "triage_says": {"nl": "Wat de verwijzer schrijft", "en": "What the referrer writes"},
    "triage_reason": {"nl": "Reden van verwijzing", "en": "Reason for referral"},
    "triage_requested": {"nl": "Gevraagd", "en": "Asked for"},
    "triage_referrer": {"nl": "Verwijzer", "en": "Referrer"},
    "triage_date": {"nl": "Datum van de verwijzing", "en": "Date of the referral"},
    "triage_priority": {"nl": "Urgentie", "en": "Urgency"},
    "triage_priority_routine": {"nl": "gewoon", "en": "routine"},
    "triage_priority_urgent": {"nl": "met spoed", "en": "urgent"},
    "triage_priority_asap": {"nl": "zo snel mogelijk", "en": "as soon as possible"},
    "triage_priority_stat": {"nl": "direct", "en": "immediately"},
    "triage_notes": {"nl": "Toelichting", "en": "Notes"},
    "triage_not_given": {"nl": "niet vermeld", "en": "not given"},
    "triage_criteria": {
        "nl": "Wanneer zelfhulp niet de eerste stap is",
        "en": "When self-help is not the first step",
    },
    "triage_criteria_intro": {
        "nl": "Het programma is zelfhulp naast behandeling. Bij deze klachten is eerst andere "
        "zorg nodig. Weet je het niet zeker, neem dan eerst contact op met de cliënt of de "
        "verwijzer.",
        "en": "The programme is self-help beside treatment. With these complaints other care "
        "is needed first. If you are not sure, contact the client or the referrer first.",
    },
    "triage_source": {"nl": "Bron", "en": "Source"},
    "triage_accept_says": {
        "nl": "Aannemen: de cliënt komt op de wachtlijst, krijgt een uitnodiging voor het "
        "programma, en de verwijzer ziet dat de aanmelding is aangenomen.",
        "en": "Accept: the client goes on the waiting list, gets an invitation to the "
        "programme, and the referrer sees that the referral was accepted.",
    },
    "triage_accept": {
        "nl": "Aannemen en uitnodigen",
        "en": "Accept and invite",
    },
    "triage_decline_reason": {
        "nl": "Afwijzen: waarom past zelfhulp nu niet?",
        "en": "Decline: why does self-help not suit now?",
    },
    "triage_decline_note": {
        "nl": "Toelichting voor de verwijzer (wat raad je aan?)",
        "en": "Explanation for the referrer (what do you advise?)",
    },
    "triage_decline_says": {
        "nl": "Afwijzen: er wordt niemand ingeschreven. De verwijzer krijgt de reden en je "
        "toelichting in het dossier. Bij acuut risico: bel de verwijzer ook zelf.",
        "en": "Decline: nobody is enrolled. The referrer gets the reason and your explanation "
        "in the record. With acute risk: call the referrer yourself as well.",
    },
    "triage_decline": {"nl": "Afwijzen", "en": "Decline"},
    "triage_notice_accept": {
        "nl": "De aanmelding is aangenomen: de cliënt staat op de wachtlijst en is uitgenodigd.",
        "en": "The referral is accepted: the client is on the waiting list and invited.",
    },
    "triage_notice_decline": {
        "nl": "De aanmelding is afgewezen; de verwijzer krijgt de reden.",
        "en": "The referral is declined; the referrer gets the reason.",
    },
    "triage_was_accepted": {
        "nl": "Deze aanmelding is op {date} aangenomen.",
        "en": "This referral was accepted on {date}.",
    },
    "triage_was_declined": {
        "nl": "Deze aanmelding is op {date} afgewezen: {reason}.",
        "en": "This referral was declined on {date}: {reason}.",
    },
    "triage_decided_already": {
        "nl": "Deze aanmelding was al beoordeeld. Er is niets veranderd.",
        "en": "This referral was assessed already. Nothing was changed.",
    },
    "triage_reason_needed": {
        "nl": "Kies een reden om af te wijzen. Er is niets veranderd.",
        "en": "Choose a reason to decline. Nothing was changed.",
    },
    "triage_note_needed": {
        "nl": "Bij 'Andere reden' hoort een toelichting voor de verwijzer. Er is niets veranderd.",
        "en": "'Another reason' needs an explanation for the referrer. Nothing was changed.",
    },
    "triage_note_long": {
        "nl": "De toelichting is te lang (hooguit 2000 tekens). Er is niets veranderd.",
        "en": "The explanation is too long (2000 characters at most). Nothing was changed.",
    },
    "triage_not_found": {
        "nl": "Deze aanmelding bestaat niet bij deze praktijk.",
        "en": "This referral does not exist at this practice.",
    },
    "waiting_help_title": {"nl": "Terwijl je wacht", "en": "While you wait"},
    "waiting_help_your_practice": {"nl": "je praktijk", "en": "your practice"},
    "waiting_help_where": {
        "nl": "Je staat op de wachtlijst bij {practice}. Je hebt daar nog geen eigen "
        "behandelaar. Gaat het slechter terwijl je wacht? Wacht dan niet, maar bel:",
        "en": "You are on the waiting list at {practice}. You do not have your own care "
        "professional there yet. Are things getting worse while you wait? Do not wait, call:",
    },
    "waiting_help_113": {
        "nl": "Denk je aan zelfdoding? Bel 113 Zelfmoordpreventie, gratis, dag en nacht:",
        "en": "Thinking about suicide? Call 113 Suicide Prevention, free, day and night:",
    },
    "waiting_help_112": {
        "nl": "Is er direct gevaar voor jou of een ander? Bel",
        "en": "Is anyone in immediate danger? Call",
    },
    "waiting_help_gp": {
        "nl": "Gaat het veel slechter, maar is het geen noodgeval? Bel overdag je huisarts. "
        "'s Avonds, 's nachts en in het weekend bel je de huisartsenpost.",
        "en": "Much worse, but not an emergency? Call your GP during the day. In the evening, "
        "at night and at the weekend, call the out-of-hours GP service (huisartsenpost).",
    },
    "waiting_help_call": {
        "nl": "Vragen over je aanmelding of de wachttijd? Bel {practice}{phone} op werkdagen.",
        "en": "Questions about your referral or the wait? Call {practice}{phone} on working days.",
    },
    "waiting_help_not_watched": {
        "nl": "Wat je in de app invult, leest niet meteen iemand. Bel dus zelf als het "
        "slechter met je gaat.",
        "en": "Nobody reads what you enter in the app straight away. So call yourself if "
        "you are feeling worse.",
    },
    # --- end of referral triage ---
    # --- safety rules and the practice's promise (issue 16, items 3 and 4) ---
    "safety_signal_urgent": {
        "nl": "Je gaf aan dat je aan de dood denkt, of aan jezelf iets aandoen. Je hoeft hier "
        "niet alleen mee te blijven. Praat er vandaag met iemand over.",
        "en": "You said you think about death, or about harming yourself. You do not have to "
        "carry this alone. Talk to someone about it today.",
    },
    "safety_routine_title": {
        "nl": "Dank je wel voor het invullen",
        "en": "Thank you for filling this in",
    },
    "safety_signal_routine": {
        "nl": "Je antwoorden laten zien dat het op dit moment zwaar voor je is. Goed dat je "
        "het eerlijk invulde.",
        "en": "Your answers show that things are hard for you at the moment. It is good that "
        "you filled this in honestly.",
    },
    "safety_promise_routine": {
        "nl": "{who} kijkt {promise} naar je antwoorden en bespreekt ze met je, uiterlijk bij "
        "jullie volgende contact. De app wordt niet dag en nacht bekeken. Gaat het ineens "
        "slechter? Wacht dan niet en gebruik de hulp hierboven.",
        "en": "{who} looks at your answers {promise} and talks them through with you, at the "
        "latest at your next contact. The app is not watched day and night. If things "
        "suddenly get worse, do not wait: use the help above.",
    },
    "safety_who_practitioner": {"nl": "Je behandelaar", "en": "Your care professional"},
    "safety_the_practice": {"nl": "De praktijk", "en": "The practice"},
    "pract_signal_urgent": {"nl": "Dringend", "en": "Urgent"},
    "pract_signal_routine": {"nl": "Routine", "en": "Routine"},
    "pract_signal_routine_text": {
        "nl": "Signaal in {title} ({date}): bekijk het vóór of bij het volgende contact.",
        "en": "Signal in {title} ({date}): review it before or at the next contact.",
    },
    "practice_alert_routine": {
        "nl": "Cliënt {patient}: signaal om te bekijken sinds {date} (open: {n}), vóór of bij "
        "het volgende contact",
        "en": "Client {patient}: signal to review since {date} (open: {n}), before or at the "
        "next contact",
    },
    # --- issue 17: sessions that end ---
    "logout": {"nl": "Uitloggen", "en": "Sign out"},
    "error_reference": {
        "nl": "Neem je contact op met de praktijk? Noem dan deze code: {reference}.",
        "en": "If you contact the practice, please mention this code: {reference}.",
    },
    "signed_out_done": {
        "nl": "Je bent uitgelogd. Wil je verder? Open het programma opnieuw vanuit je dossier "
        "of patiëntenportaal.",
        "en": "You are signed out. To carry on, open the programme again from your record or "
        "patient portal.",
    },
    # --- issue 17, branch writes: writes that cannot be delivered, and why ---
    "practice_blocked_intro": {
        "nl": "Deze gegevens kunnen nu niet bij het EHR worden afgeleverd. Ze zijn bewaard en "
        "gaan vanzelf alsnog mee zodra de oorzaak is opgelost.",
        "en": "These records cannot be delivered to the EHR now. They are kept and go along "
        "by themselves once the cause is resolved.",
    },
    "practice_blocked_item": {
        "nl": "{n} wijziging(en) wachten.",
        "en": "{n} change(s) waiting.",
    },
    "practice_blocked_error": {"nl": "Laatste melding:", "en": "Last message:"},
    "practice_blocked_worker-refused": {
        "nl": "Het EHR weigert de koppeling van de app (SMART Backend Services). Vraag de "
        "beheerder de koppeling bij het EHR te registreren, of de app te laten schrijven met "
        "de inlog van de behandelaar of cliënt.",
        "en": "The EHR refuses the app's connection (SMART Backend Services). Ask the "
        "administrator to register it with the EHR, or to let the app write with the "
        "care professional's or client's own sign-in.",
    },
    "practice_blocked_no-worker": {
        "nl": "De app heeft geen sleutel om bij het EHR te schrijven. Vraag de beheerder dit "
        "in te stellen.",
        "en": "The app has no key to write to the EHR. Ask the administrator to set one up.",
    },
    "practice_blocked_no-user": {
        "nl": "Het EHR neemt alleen gegevens aan met de inlog van een behandelaar of cliënt, "
        "en deze wijzigingen kwamen niet van iemand die was ingelogd (een verwijzing, of iets "
        "wat de app zelf deed). Vraag de beheerder het EHR de app zelf te laten schrijven.",
        "en": "The EHR accepts records only with a care professional's or client's sign-in, "
        "and these changes did not come from someone signed in (a referral, or something the "
        "app did itself). Ask the administrator to let the app write to the EHR itself.",
    },
    "practice_blocked_user-ended": {
        "nl": "De inlog van wie deze wijzigingen deed is verlopen. Ze gaan mee zodra die "
        "persoon het programma weer opent vanuit het EHR.",
        "en": "The sign-in of whoever made these changes has run out. They go along once that "
        "person opens the programme from the EHR again.",
    },
    # --- issue 17, branch api: referral intake that leaks nothing ---
    "triage_bsn_mismatch": {
        "nl": "Let op: BSN klopt niet met naam/geboortedatum. Het dossier met dit BSN in het EPD "
        "heeft een andere achternaam of geboortedatum dan de verwijzing. Controleer of het om "
        "dezelfde persoon gaat voordat je accepteert; tot je beslist gaat er niets naar het "
        "dossier.",
        "en": "Note: the BSN does not match the name/date of birth. The record with this BSN in "
        "the EHR has another family name or date of birth than the referral. Check that it is "
        "the same person before you accept; until you decide, nothing goes to the record.",
    },
    # --- issue 17, branch limits: rate limits and typed text ---
    "error_slow_down": {
        "nl": "Even rustig aan: er kwamen net veel verzoeken tegelijk binnen, dus we wachten "
        "heel even. Probeer het over een minuut gewoon opnieuw.",
        "en": "Just a moment: a lot of requests came in at once, so we are pausing briefly. "
        "Please simply try again in a minute.",
    },
    "error_control_characters": {
        "nl": "Hier stond een onzichtbaar teken dat we niet kunnen bewaren (vaak meegekomen "
        "met kopiëren en plakken). We hebben het weggehaald: kijk je tekst nog even na en "
        "verstuur opnieuw.",
        "en": "This held an invisible character we cannot keep (it often comes along with copy "
        "and paste). We took it out: please check your text and send it again.",
    },
}


def choose_language(explicit: str | None, accept: Iterable[str]) -> str:
    """The EHR's locale when given, else the browser's first supported language, else Dutch."""
    for candidate in ([explicit] if explicit else []) + list(accept):
        short = (candidate or "").split("-")[0].split("_")[0].lower()
        if short in LANGUAGES:
            return short
    return LANGUAGES[0]


def format_date(value: str | None, lang: str) -> str:
    """A FHIR date the way people write it: 2-2-1972 in Dutch, 2 February 1972 in English."""
    if not value:
        return ""
    parts = value.split("-")
    if len(parts) != 3:
        return value  # a partial date (year or year-month) stays as it is
    year, month, day = (int(p) for p in parts)
    if lang == "en":
        months = ("January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December")  # fmt: skip
        return f"{day} {months[month - 1]} {year}"
    return f"{day}-{month}-{year}"


def translate(key: str, lang: str, **values: str) -> str:
    """A message in ``lang`` (Dutch when missing), with ``{placeholders}`` filled in."""
    texts = MESSAGES[key]
    return texts.get(lang, texts["nl"]).format(**values)
